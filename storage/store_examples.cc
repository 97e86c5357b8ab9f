// Store: feedback, training examples (review queue, state index, dedupe) and the
// replay reservoir.
#include <set>
#include <unordered_set>

#include <rocksdb/write_batch.h>

#include "storage/keys.h"
#include "storage/replay.h"
#include "storage/store.h"
#include "storage/store_internal.h"

namespace kaizen::storage {
namespace {

Status validate_example(const Example& e, size_t index) {
  const std::string which = "example " + std::to_string(index);
  if (e.messages.empty()) return Status::InvalidArgument(which + ": no messages");
  for (size_t i = 0; i < e.messages.size(); ++i) {
    const auto& r = e.messages[i].role;
    if (r != "system" && r != "user" && r != "assistant" && r != "tool") {
      return Status::InvalidArgument(which + ": message " + std::to_string(i) + " has role '" + r +
                                     "' (want system, user, assistant or tool)");
    }
  }
  if (e.messages.back().role != "assistant") {
    return Status::InvalidArgument(which + ": last message must be from the assistant");
  }
  return Status::OK();
}

}  // namespace

Status Store::put_example_records(rocksdb::WriteBatch* batch, Example* example,
                                  const Example* previous) {
  Example& e = *example;
  rocksdb::ColumnFamilyHandle* cf = h_->cf[kCfExamples];
  rocksdb::Status rs;
  if (!previous || previous->state != e.state) {
    auto seq = next_id(kIdExampleSeq);
    if (!seq.ok()) return seq.status();
    e.state_seq = *seq;
    if (previous) {
      rs = batch->Delete(
          cf, keys::example_state(static_cast<uint8_t>(previous->state), previous->state_seq));
    }
    if (rs.ok()) {
      rs = batch->Put(cf, keys::example_state(static_cast<uint8_t>(e.state), e.state_seq),
                      keys::u64(e.id));
    }
  }
  if (rs.ok()) rs = batch->Put(cf, keys::example(e.id), encode(e));
  if (rs.ok() && !previous) {
    rs = batch->Put(cf, keys::example_hash(content_hash(e.messages, e.tools_json)), keys::u64(e.id));
  }
  return from_rocksdb(rs, "build example batch");
}

Result<Feedback> Store::add_feedback(Feedback f, std::optional<Example> correction) {
  if (f.rating < -1 || f.rating > 1) {
    return Status::InvalidArgument("rating must be 1, -1 or 0, not " + std::to_string(f.rating));
  }
  if (f.rating == 0 && !correction) {
    return Status::InvalidArgument("feedback needs a rating or a correction");
  }
  auto message = get_message(f.message_id);
  if (!message.ok()) {
    if (message.status().IsNotFound()) {
      return Status::NotFound("feedback refers to message " + std::to_string(f.message_id) +
                              ", which does not exist");
    }
    return message.status();
  }
  if (correction) {
    KAIZEN_RETURN_IF_ERROR(validate_example(*correction, 0).WithContext("correction"));
  }
  // A correction example gets a state_seq: commit in seq order (see put_example_records).
  std::unique_lock<std::mutex> lock(write_mu_, std::defer_lock);
  if (correction) lock.lock();
  auto fid = next_id(kIdFeedback);
  if (!fid.ok()) return fid.status();
  f.id = *fid;
  if (f.created_ms == 0) f.created_ms = now_ms();
  rocksdb::WriteBatch batch;
  if (correction) {
    // Duplicate proposals collapse: the same conversation proposed twice (two users
    // upvoting one answer) is one example; the feedback links to it.
    std::string existing;
    rocksdb::Status hs = h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfExamples],
                                     keys::example_hash(content_hash(correction->messages, correction->tools_json)), &existing);
    if (hs.ok()) {
      f.example_id = keys::get_u64(existing).value_or(0);
      f.duplicate = true;
      // An approved proposal (a trusted author's) approves a duplicate still waiting for
      // review, in the same batch.
      if (correction->state == ExampleState::kApproved) {
        auto e = get_example(f.example_id);
        if (!e.ok() && !e.status().IsNotFound()) return e.status();
        if (e.ok() && e->state == ExampleState::kPending) {
          KAIZEN_RETURN_IF_ERROR(review_in_batch(&batch, &*e, true, correction->reviewer));
        }
      }
      correction.reset();
    } else if (!hs.IsNotFound()) {
      return from_rocksdb(hs, "read example hash index");
    }
  }
  if (correction) {
    auto eid = next_id(kIdExample);
    if (!eid.ok()) return eid.status();
    Example& e = *correction;
    e.id = *eid;
    e.feedback_id = f.id;
    if (e.source == ExampleSource::kKnowledge) e.source = ExampleSource::kCorrection;
    if (e.created_ms == 0) e.created_ms = f.created_ms;
    e.updated_ms = e.created_ms;
    if (e.provenance.empty()) e.provenance = "feedback:" + std::to_string(f.id) + " by " + f.author;
    f.example_id = e.id;
    KAIZEN_RETURN_IF_ERROR(put_example_records(&batch, &e, nullptr));
  }
  batch.Put(h_->cf[kCfFeedback], keys::feedback(f.id), encode(f));
  KAIZEN_RETURN_IF_ERROR(write(&batch, /*sync=*/true));
  return f;
}

Result<Feedback> Store::get_feedback(uint64_t id) {
  return get_record<Feedback>(kCfFeedback, keys::feedback(id));
}

Result<Example> Store::add_example(Example example, bool dedupe) {
  std::vector<Example> one{example};
  auto ids = add_examples(std::move(one), dedupe);
  if (!ids.ok()) return ids.status();
  if ((*ids)[0] == 0) {
    std::string existing;
    rocksdb::Status rs = h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfExamples],
                                     keys::example_hash(content_hash(example.messages, example.tools_json)), &existing);
    auto id = rs.ok() ? keys::get_u64(existing) : std::nullopt;
    return Status::AlreadyExists("an example with the same messages is already stored" +
                                 (id ? " as #" + std::to_string(*id) : std::string()));
  }
  return get_example((*ids)[0]);
}

Result<std::vector<uint64_t>> Store::add_examples(std::vector<Example> examples, bool dedupe) {
  for (size_t i = 0; i < examples.size(); ++i) {
    KAIZEN_RETURN_IF_ERROR(validate_example(examples[i], i));
  }
  // Dedupe is check-then-insert, and state_seq order must be commit order.
  std::lock_guard<std::mutex> lock(write_mu_);
  std::vector<uint64_t> ids(examples.size(), 0);
  std::unordered_set<std::string> batch_hashes;
  rocksdb::WriteBatch batch;
  const int64_t now = now_ms();
  for (size_t i = 0; i < examples.size(); ++i) {
    Example& e = examples[i];
    if (dedupe) {
      const std::string hash = content_hash(e.messages, e.tools_json);
      if (!batch_hashes.insert(hash).second) continue;
      std::string existing;
      rocksdb::Status rs = h_->db->Get(rocksdb::ReadOptions(), h_->cf[kCfExamples],
                                       keys::example_hash(hash), &existing);
      if (rs.ok()) continue;
      if (!rs.IsNotFound()) return from_rocksdb(rs, "read example hash index");
    }
    auto id = next_id(kIdExample);
    if (!id.ok()) return id.status();
    e.id = *id;
    if (e.created_ms == 0) e.created_ms = now;
    e.updated_ms = e.created_ms;
    KAIZEN_RETURN_IF_ERROR(put_example_records(&batch, &e, nullptr));
    ids[i] = e.id;
  }
  if (batch.Count() > 0) KAIZEN_RETURN_IF_ERROR(write(&batch, /*sync=*/true));
  return ids;
}

Result<Example> Store::get_example(uint64_t id) {
  return get_record<Example>(kCfExamples, keys::example(id));
}

Result<Page<Example>> Store::list_examples(ExampleState state, const PageRequest& page) {
  std::string prefix{'s', static_cast<char>(state)};
  Page<Example> out;
  auto rows = scan_page(kCfExamples, prefix, page, /*newest_first=*/false, &out.next_cursor);
  if (!rows.ok()) return rows.status();
  for (const auto& row : *rows) {
    const std::string index_key = prefix + keys::u64(row.id);  // row.id is the state_seq
    auto id = keys::get_u64(row.value);
    if (!id || row.value.size() != 8) {
      return Status::Corruption(where(kCfExamples, index_key) + ": index value is not 8 bytes");
    }
    auto e = get_example(*id);
    if (!e.ok()) {
      if (e.status().IsNotFound()) {
        return Status::Corruption(where(kCfExamples, index_key) +
                                  ": state index points at missing example " + std::to_string(*id));
      }
      return e.status();
    }
    out.items.push_back(std::move(*e));
  }
  return out;
}

Status Store::review_example(uint64_t id, bool approve, const std::string& reviewer) {
  std::lock_guard<std::mutex> lock(write_mu_);
  auto e = get_example(id);
  if (!e.ok()) return e.status();
  if (e->state != ExampleState::kPending) {
    return Status::Aborted("example " + std::to_string(id) + " is " + to_string(e->state) +
                           ", not pending review");
  }
  rocksdb::WriteBatch batch;
  KAIZEN_RETURN_IF_ERROR(review_in_batch(&batch, &*e, approve, reviewer));
  return write(&batch, /*sync=*/true);
}

Status Store::review_in_batch(rocksdb::WriteBatch* batch, Example* e, bool approve, const std::string& reviewer) {
  const Example previous = *e;
  e->state = approve ? ExampleState::kApproved : ExampleState::kRejected;
  e->reviewer = reviewer;
  e->updated_ms = now_ms();
  KAIZEN_RETURN_IF_ERROR(put_example_records(batch, e, &previous));
  if (e->feedback_id != 0) {  // the proposal's feedback records the verdict too
    auto f = get_feedback(e->feedback_id);
    if (f.ok()) {
      f->review = approve ? ReviewState::kAccepted : ReviewState::kRejected;
      batch->Put(h_->cf[kCfFeedback], keys::feedback(f->id), encode(*f));
    } else if (!f.status().IsNotFound()) {
      return f.status();
    }
  }
  return Status::OK();
}

Status Store::mark_trained(const std::vector<uint64_t>& example_ids, uint64_t adapter_version) {
  std::lock_guard<std::mutex> lock(write_mu_);
  rocksdb::WriteBatch batch;
  std::vector<ReplayEntry> offers;
  std::set<uint64_t> done;
  const int64_t now = now_ms();
  for (uint64_t id : example_ids) {
    if (!done.insert(id).second) continue;
    auto e = get_example(id);
    if (!e.ok()) return e.status();
    if (e->state == ExampleState::kTrained) continue;
    if (e->state != ExampleState::kApproved) {
      return Status::Aborted("example " + std::to_string(id) + " is " + to_string(e->state) +
                             "; only approved examples can be marked trained");
    }
    const Example previous = *e;
    e->state = ExampleState::kTrained;
    if (e->first_adapter_version == 0) e->first_adapter_version = adapter_version;
    e->updated_ms = now;
    KAIZEN_RETURN_IF_ERROR(put_example_records(&batch, &*e, &previous));
    offers.push_back({id, e->source});
  }
  if (offers.empty()) return Status::OK();
  ReplayReservoir::Plan plan = replay_->plan(offers);
  batch.Put(h_->cf[kCfReplay], keys::kReplaySeen, keys::u64(plan.seen_after));
  for (const auto& [slot, entry] : plan.writes) {
    batch.Put(h_->cf[kCfReplay], keys::replay_slot(slot), encode(entry));
  }
  KAIZEN_RETURN_IF_ERROR(write(&batch, /*sync=*/true));
  replay_->apply(plan);
  return Status::OK();
}

Store::ReplayStats Store::replay_stats() const {
  ReplayStats s;
  s.seen = replay_->seen();
  s.size = replay_->size();
  s.capacity = replay_->capacity();
  s.by_source = replay_->count_by_source();
  return s;
}

std::vector<ReplayEntry> Store::sample_replay(size_t k, uint64_t seed) const {
  return replay_->sample(k, seed);
}

std::vector<ReplayEntry> Store::sample_replay_stratified(
    const std::map<ExampleSource, size_t>& quota, uint64_t seed) const {
  return replay_->sample_stratified(quota, seed);
}

}  // namespace kaizen::storage
