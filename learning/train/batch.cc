#include "learning/train/batch.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include <torch/torch.h>

namespace kaizen::train {

Batch make_batch(const std::vector<const Example*>& rows) {
  if (rows.empty()) throw std::invalid_argument("make_batch: no rows");
  int64_t T = 0;
  for (const Example* e : rows) T = std::max(T, e->length());
  const int64_t B = static_cast<int64_t>(rows.size());
  Batch batch;
  batch.ids = torch::zeros({B, T}, torch::kInt64);
  batch.labels = torch::full({B, T}, kIgnoreIndex, torch::kInt64);
  auto ids = batch.ids.accessor<int64_t, 2>();
  auto labels = batch.labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const Example& e = *rows[static_cast<size_t>(b)];
    if (e.length() == 0) throw std::invalid_argument("make_batch: empty example");
    for (int64_t t = 0; t < e.length(); ++t) {
      ids[b][t] = e.ids[static_cast<size_t>(t)];
      if (e.loss[static_cast<size_t>(t)] && t > 0) {
        labels[b][t] = e.ids[static_cast<size_t>(t)];
        ++batch.target_tokens;
      }
    }
    batch.lengths.push_back(e.length());
    batch.tokens += e.length();
  }
  return batch;
}

std::vector<std::vector<size_t>> bucket_by_length(const std::vector<int64_t>& lengths, int64_t batch_tokens,
                                                  std::mt19937_64* rng) {
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::vector<uint64_t> tie(lengths.size(), 0);
  if (rng) {
    for (auto& t : tie) t = (*rng)();
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return lengths[a] != lengths[b] ? lengths[a] < lengths[b] : (tie[a] != tie[b] ? tie[a] < tie[b] : a < b);
  });
  std::vector<std::vector<size_t>> batches;
  std::vector<size_t> cur;
  int64_t longest = 0;
  for (size_t i : order) {
    const int64_t L = std::max(longest, lengths[i]);  // sorted: lengths[i] is the new longest
    if (!cur.empty() && L * static_cast<int64_t>(cur.size() + 1) > batch_tokens) {
      batches.push_back(std::move(cur));
      cur.clear();
      longest = 0;
    }
    cur.push_back(i);
    longest = std::max(longest, lengths[i]);
  }
  if (!cur.empty()) batches.push_back(std::move(cur));
  if (rng) std::shuffle(batches.begin(), batches.end(), *rng);
  return batches;
}

}  // namespace kaizen::train
