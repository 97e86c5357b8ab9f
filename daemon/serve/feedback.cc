#include "daemon/serve/feedback.h"

#include <algorithm>
#include <optional>

#include "daemon/serve/params.h"
#include "daemon/serve/store_failure.h"

namespace kaizen::daemon {

using nlohmann::json;

namespace {
Error from_status(const storage::Status& st) { return http_error(failure_from(st)); }
}  // namespace

std::string peer_name(const PeerInfo& p) {
  if (p.transport == PeerInfo::Transport::kUnix) return "uid:" + std::to_string(p.uid);
  return p.address;
}

Result<FeedbackAck> record_feedback(storage::Store& store, const std::vector<std::string>& trusted,
                                    FeedbackRequest req) {
  auto parsed = parse_id(json(req.message_id), "message_id");
  if (!parsed.ok()) return Error::InvalidRequest("message_id must be the id of a chat completion", "message_id");
  const uint64_t mid = *parsed;
  auto msg = store.get_message(mid);
  if (!msg.ok()) {
    if (msg.status().IsNotFound()) {
      return Error::NotFound("message " + req.message_id + " not found (is its answer still being generated?)",
                             "message_not_found");
    }
    return from_status(msg.status());
  }
  if (msg->role != "assistant") return Error::InvalidRequest("message " + req.message_id + " is not an answer", "message_id");
  storage::Feedback fb;
  fb.message_id = mid;
  fb.rating = req.rating;
  fb.correction = req.correction.value_or("");
  fb.author = req.user.empty() ? peer_name(req.peer) : req.user;
  std::optional<storage::Example> example;
  if ((req.rating > 0) || (req.rating < 0 && !fb.correction.empty())) {
    // The conversation up to the rated answer becomes a proposal for the review queue.
    storage::PageRequest page;
    page.limit = 1000;
    auto msgs = store.list_messages(msg->conversation_id, page);
    if (!msgs.ok()) return from_status(msgs.status());
    storage::Example ex;
    for (const auto& m : msgs->items) {
      if (m.id == mid) break;
      ex.messages.push_back({m.role, m.content, m.tool_calls, m.tool_call_id});
    }
    // A good answer is learned as given, tool calls included; a correction is text.
    if (req.rating > 0) {
      ex.messages.push_back({"assistant", msg->content, msg->tool_calls});
    } else {
      ex.messages.push_back({"assistant", fb.correction});
    }
    // The functions the model was shown are part of the example: it learns to call them.
    auto conv = store.get_conversation(msg->conversation_id);
    if (!conv.ok()) return from_status(conv.status());
    ex.tools_json = conv->tools_json;
    ex.source = req.rating > 0 ? storage::ExampleSource::kFeedback : storage::ExampleSource::kCorrection;
    ex.author = fb.author;
    ex.provenance = "feedback on message " + std::to_string(mid) + " by " + fb.author;
    if (std::find(trusted.begin(), trusted.end(), fb.author) != trusted.end()) {
      // train.trusted_authors: approved on arrival, like an operator import.
      ex.state = storage::ExampleState::kApproved;
      ex.reviewer = "trusted author " + fb.author;
      fb.review = storage::ReviewState::kAccepted;
    } else {
      ex.state = storage::ExampleState::kPending;
    }
    example = std::move(ex);
  }
  auto stored = store.add_feedback(fb, example);
  if (!stored.ok()) return from_status(stored.status());
  FeedbackAck ack;
  ack.feedback_id = std::to_string(stored->id);
  ack.status = !example                                              ? "recorded"
               : stored->duplicate                                   ? "duplicate"  // linked to the existing example
               : example->state == storage::ExampleState::kApproved ? "approved"
                                                                     : "queued_for_review";
  return ack;
}

}  // namespace kaizen::daemon
