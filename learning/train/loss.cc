#include "learning/train/loss.h"

#include <stdexcept>

#include <torch/torch.h>

namespace kaizen::train {

LossSums causal_lm_loss(const model::Decoder& decoder, const adapter::Adapter* adapter, const Batch& batch,
                        const LossOptions& options) {
  const bool backward = options.backward_scale > 0;
  std::optional<torch::NoGradGuard> no_grad;
  if (!backward) no_grad.emplace();
  const int64_t B = batch.ids.size(0), T = batch.ids.size(1);
  // Source positions (b, t) whose next token labels[b, t+1] carries loss.
  std::vector<int64_t> src, tgt;
  auto labels = batch.labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t + 1 < batch.lengths[static_cast<size_t>(b)]; ++t) {
      if (labels[b][t + 1] != kIgnoreIndex) {
        src.push_back(b * T + t);
        tgt.push_back(labels[b][t + 1]);
      }
    }
  }
  LossSums sums;
  if (src.empty()) return sums;
  const auto device = decoder.options().device;
  torch::Tensor hidden = decoder.hidden_states(batch.ids, nullptr, adapter, batch.lengths);  // (B, T, C)
  const int64_t C = hidden.size(2);
  torch::Tensor src_t = torch::tensor(src, torch::kInt64).to(device);
  torch::Tensor tgt_t = torch::tensor(tgt, torch::kInt64).to(device);
  torch::Tensor h = hidden.reshape({B * T, C}).index_select(0, src_t);  // (N, C)
  const int64_t N = h.size(0);
  const torch::Tensor& W = decoder.lm_head_weight();  // (V, C)
  std::vector<torch::Tensor> grads;
  torch::Tensor loss_acc = torch::zeros({}, torch::TensorOptions().device(device).dtype(torch::kDouble));
  torch::Tensor correct_acc = torch::zeros({}, torch::TensorOptions().device(device).dtype(torch::kInt64));
  {
    torch::NoGradGuard inner;
    torch::Tensor hd = h.detach();
    const int64_t V = W.size(0);
    const int64_t rows = std::min<int64_t>(options.chunk_rows > 0 ? options.chunk_rows : 256, N);
    // fp32 logits go into one buffer per thread, reused across chunks and calls: a fresh
    // (256, V) tensor per chunk is far above glibc's mmap threshold, so the kernel
    // would map, fault in and zero 155 MB (Qwen3) every time.
    const bool reuse = W.scalar_type() == torch::kFloat;
    thread_local torch::Tensor buffer;
    if (reuse && (!buffer.defined() || buffer.device() != W.device() || buffer.numel() < rows * V)) {
      buffer = torch::empty({rows * V}, W.options());
    }
    for (int64_t start = 0; start < N; start += rows) {
      const int64_t n = std::min(rows, N - start);
      torch::Tensor hc = hd.narrow(0, start, n);                                 // (n, C)
      torch::Tensor y = tgt_t.narrow(0, start, n);                               // (n)
      torch::Tensor logits;  // (n, V)
      if (reuse) {
        logits = buffer.narrow(0, 0, n * V).view({n, V});
        at::mm_out(logits, hc, W.t());
      } else {
        logits = decoder.lm_head(hc).to(torch::kFloat);
      }
      // logsumexp by hand, in place: torch::logsumexp forms (logits - max) as a new (n, V)
      // tensor, which for the tiny demo model's 151,936-token vocabulary made map, fault
      // and zero half of every training step (perf: 56% of the learner thread).
      torch::Tensor picked = logits.gather(1, y.unsqueeze(1));                   // (n, 1)
      correct_acc += logits.argmax(-1).eq(y).sum();
      torch::Tensor max = std::get<0>(logits.max(-1, /*keepdim=*/true));         // (n, 1)
      logits.sub_(max).exp_();                                                   // exp(l - max)
      torch::Tensor sum = logits.sum(-1, /*keepdim=*/true);                      // (n, 1)
      torch::Tensor lse = sum.log() + max;                                       // (n, 1)
      loss_acc += (lse - picked).sum().to(torch::kDouble);
      if (backward) {
        // d(lse - logit_y)/dlogits = softmax - onehot(y); then through logits = h W^T.
        logits.div_(sum);
        logits.scatter_add_(1, y.unsqueeze(1), torch::full({n, 1}, -1.0f, logits.options()));
        grads.push_back(torch::matmul(logits.to(W.scalar_type()), W));          // (n, C)
      }
    }
  }
  sums.loss_sum = loss_acc.item<double>();
  sums.correct = correct_acc.item<int64_t>();
  sums.targets = N;
  if (backward) {
    torch::Tensor g = torch::cat(grads, 0).mul_(options.backward_scale);
    if (!h.requires_grad()) throw std::logic_error("causal_lm_loss: nothing requires grad (frozen adapter?)");
    h.backward(g);
  }
  return sums;
}

}  // namespace kaizen::train
