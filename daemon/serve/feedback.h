// POST /v1/feedback behind the Service: a rating (and correction) of a stored answer is
// recorded, and a thumbs-up or a correction becomes an example proposal — pending review
// (decision 6), or approved on arrival for train.trusted_authors.
#pragma once

#include <string>
#include <vector>

#include "daemon/service.h"
#include "storage/store.h"

namespace kaizen::daemon {

// Who a request comes from, for provenance: "uid:N" for Unix peers, else the address.
std::string peer_name(const PeerInfo& peer);

// Errors: message_id not an id / not an answer -> 400; unknown message -> 404
// ("message_not_found"); store failures mapped by http_error().
Result<FeedbackAck> record_feedback(storage::Store& store, const std::vector<std::string>& trusted_authors,
                                    FeedbackRequest request);

}  // namespace kaizen::daemon
