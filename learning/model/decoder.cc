#include "learning/model/decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <torch/torch.h>

#include "learning/model/cpu_kernels.h"

namespace kaizen::model {

using adapter::Adapter;
using adapter::LoraPair;
using adapter::Target;
using torch::Tensor;

namespace {

// A placeholder with the parameter's shape that costs one element of memory; the
// loader swaps the real data in with set_data().
Tensor placeholder(const std::vector<int64_t>& shape, const DecoderOptions& o) {
  return torch::zeros({1}, torch::TensorOptions().device(o.device).dtype(o.dtype)).expand(shape);
}

// RMSNorm in fp32 as HF does: w * (x * rsqrt(mean(x^2) + eps)).to(dtype).
Tensor rms_norm(const Tensor& x, const Tensor& w, double eps) {
  if (x.scalar_type() == torch::kFloat) {
    return w * (x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps));
  }
  Tensor xf = x.to(torch::kFloat);
  return w * (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
}

Tensor rotate_half(const Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// Query rows per attention chunk (see attend()).
constexpr int64_t kAttentionChunk = 256;

// Decode attention (one query position per row) by the CPU kernel: q (B, 1, H, D),
// k[b], v[b] (1, Hkv, L_b, D) views of row b's cache. Returns (B, 1, H*D), or an
// undefined tensor when the kernel does not apply (device, dtype, layout, CPU).
Tensor attend_decode(const Tensor& q, const std::vector<Tensor>& k, const std::vector<Tensor>& v) {
  const int64_t B = q.size(0), H = q.size(2), D = q.size(3), Hkv = k.front().size(1);
  if (q.scalar_type() != torch::kFloat || !q.device().is_cpu() || !q.is_contiguous() ||
      torch::GradMode::is_enabled()) {
    return {};
  }
  Tensor out = torch::empty({B, 1, H * D}, q.options());
  std::vector<DecodeAttentionRow> rows;
  for (int64_t b = 0; b < B; ++b) {
    const Tensor& kb = k[static_cast<size_t>(b)];
    const Tensor& vb = v[static_cast<size_t>(b)];
    const bool layout_ok = kb.scalar_type() == torch::kFloat && vb.scalar_type() == torch::kFloat &&
                           kb.size(0) == 1 && kb.stride(3) == 1 && kb.stride(2) == D &&
                           vb.stride(3) == 1 && vb.stride(2) == D && vb.stride(1) == kb.stride(1) &&
                           vb.size(2) == kb.size(2);
    if (!layout_ok) return {};
    rows.push_back({q.data_ptr<float>() + b * H * D, kb.data_ptr<float>(), vb.data_ptr<float>(),
                    kb.stride(1), kb.size(2), out.data_ptr<float>() + b * H * D});
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  return decode_attention(rows, H, Hkv, D, scale) ? out : Tensor();
}

// Scaled dot-product attention with GQA and without repeat_kv: kv head g serves query
// heads g*rep .. g*rep+rep-1, so the query heads of one group stack along the row axis
// of one (rep*T, D) x (D, Lk) product. Queries go in chunks of kAttentionChunk rows:
// the scores tensor stays bounded for long prompts (a 4k-token prompt would need 1 GiB
// per layer in one piece), and a chunk only reads the keys its last query can see.
// The mask and 1/sqrt(D) ride along in the GEMM (baddbmm, beta = 1, alpha = scale),
// and without autograd the softmax runs in place: the scores are touched by three
// passes instead of six (bench/decode_bench, Qwen3-0.6B shape, prefill-512 on 2 cores:
// 113 -> 154 tok/s together with the chunking).
//   q (B, T, H, D) after RoPE; k_all, v_all (B, Hkv, Lk, D); mask (B, 1, 1, T, Lk) or
//   undefined (every key visible); returns (B, T, H*D).
Tensor attend(const Tensor& q, const Tensor& k_all, const Tensor& v_all, const Tensor& mask,
              int64_t max_past) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3), Hkv = k_all.size(1),
                keys = k_all.size(2), rep = H / Hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  if (B == 1 && T == 1 && !mask.defined()) {  // a decode step: the CPU kernel when it applies
    Tensor out = attend_decode(q, {k_all}, {v_all});
    if (out.defined()) return out;
  }
  const bool in_place = !torch::GradMode::is_enabled() && q.scalar_type() == torch::kFloat;
  Tensor q5 = q.permute({0, 2, 1, 3}).view({B, Hkv, rep, T, D});
  std::vector<Tensor> chunks;
  for (int64_t t0 = 0; t0 < T; t0 += kAttentionChunk) {
    const int64_t tc = std::min(kAttentionChunk, T - t0);
    // Causal: query t0+tc-1 of any row sees at most key max_past + t0 + tc - 1.
    const int64_t lk = mask.defined() ? std::min(keys, max_past + t0 + tc) : keys;
    Tensor qg = q5.narrow(3, t0, tc).reshape({B * Hkv, rep * tc, D});
    Tensor kt = k_all.narrow(2, 0, lk).reshape({B * Hkv, lk, D}).transpose(1, 2);
    Tensor v = v_all.narrow(2, 0, lk).reshape({B * Hkv, lk, D});
    Tensor scores;  // (B*Hkv, rep*tc, lk)
    if (mask.defined()) {
      scores = mask.narrow(3, t0, tc)
                   .narrow(4, 0, lk)
                   .expand({B, Hkv, rep, tc, lk})
                   .clone(at::MemoryFormat::Contiguous)
                   .view({B * Hkv, rep * tc, lk});
      scores.baddbmm_(qg, kt, /*beta=*/1, /*alpha=*/scale);
    } else {
      // Not baddbmm over torch::empty with beta = 0: libtorch 1.13's small-matrix CPU
      // kernel computes beta * C, and 0 * NaN garbage is NaN (seen as flaky logits).
      scores = torch::bmm(qg, kt).mul_(scale);
    }
    Tensor probs = in_place ? at::_softmax_out(scores, scores, -1, false)
                            : torch::softmax(scores, -1, torch::kFloat).to(q.scalar_type());
    chunks.push_back(torch::bmm(probs, v).view({B, H, tc, D}));
  }
  Tensor attn = chunks.size() == 1 ? chunks[0] : torch::cat(chunks, 2);  // (B, H, T, D)
  return attn.permute({0, 2, 1, 3}).reshape({B, T, H * D});
}

}  // namespace

// What one forward pass hands every layer. Decoder::forward (prefill, scoring, training,
// one sequence's decode) and Decoder::decode_step (rows of different requests) differ
// only here: the positions (StepRope), the adapters (StepLora) and where keys and values
// live (StepKV); DecoderLayer::forward is the same for both.

// RoPE at the pass's positions (HF apply_rotary_pos_emb).
struct StepRope {
  Tensor cos, sin;  // (B, T, 1, D) in the compute dtype

  // x (B, T, heads, D) -> rotated, same shape
  Tensor operator()(const Tensor& x) const { return x * cos + rotate_half(x) * sin; }
};

// The adapters of one pass, applied by Linear::operator(): one adapter (or none) for
// every row, or one per row (S-LoRA's batched LoRA: the base product runs once for all
// rows, each group of rows sharing an adapter adds its own B (A x)).
class StepLora {
 public:
  struct Group {
    const Adapter* adapter;  // never null
    Tensor rows;             // (n) int64 row indices; undefined = every row
  };

  // `adapter` (nullptr = the base model) on every row; autograd flows through it.
  explicit StepLora(const Adapter* adapter) : adapter_(adapter) {}
  // Row b takes row_adapters[b] (nullptr = base). Inference only.
  StepLora(const std::vector<const Adapter*>& row_adapters, torch::Device device) : per_row_(true) {
    const int64_t B = static_cast<int64_t>(row_adapters.size());
    std::vector<std::vector<int64_t>> rows;  // rows[i]: the rows of groups_[i]
    for (int64_t b = 0; b < B; ++b) {
      const Adapter* a = row_adapters[static_cast<size_t>(b)];
      if (!a) continue;
      size_t i = 0;
      while (i < groups_.size() && groups_[i].adapter != a) ++i;
      if (i == groups_.size()) {
        groups_.push_back({a, Tensor()});
        rows.emplace_back();
      }
      rows[i].push_back(b);
    }
    // A group spanning the whole batch needs no row index.
    for (size_t i = 0; i < groups_.size(); ++i) {
      if (static_cast<int64_t>(rows[i].size()) < B) {
        groups_[i].rows = torch::tensor(rows[i], torch::kInt64).to(device);
      }
    }
  }

  bool per_row() const { return per_row_; }
  const Adapter* adapter() const { return adapter_; }           // when !per_row()
  const std::vector<Group>& groups() const { return groups_; }  // when per_row()

 private:
  const Adapter* adapter_ = nullptr;
  bool per_row_ = false;
  std::vector<Group> groups_;
};

// Where the pass's new keys and values go and which keys each query sees.
class StepKV {
 public:
  virtual ~StepKV() = default;
  // Stores layer `layer`'s new k, v (B, Hkv, T, D) and returns the attention of
  // q (B, T, H, D) over each row's keys: (B, T, H*D).
  virtual Tensor append_and_attend(int64_t layer, const Tensor& q, const Tensor& k,
                                   const Tensor& v) = 0;
};

// Decoder::forward: one cache holding all B rows, or none. Row b's T new positions
// start at past[b] and the first lengths[b] of them are real (right padding).
class BatchCacheKV final : public StepKV {
 public:
  // cache: null = none; every row then attends to this pass's keys only. uniform: every
  // row has lengths[b] == T and the same past (one copy per layer). keys: Lk, the key
  // positions attention looks at. mask: additive (B, 1, 1, T, Lk), or undefined when
  // every key is visible. past and lengths must outlive this object.
  BatchCacheKV(KVCache* cache, const std::vector<int64_t>& past,
               const std::vector<int64_t>& lengths, bool uniform, int64_t keys, Tensor mask)
      : cache_(cache),
        past_(past),
        lengths_(lengths),
        uniform_(uniform),
        keys_(keys),
        max_past_(*std::max_element(past.begin(), past.end())),
        mask_(std::move(mask)) {}

  Tensor append_and_attend(int64_t layer, const Tensor& q, const Tensor& k,
                           const Tensor& v) override {
    if (!cache_) return attend(q, k, v, mask_, max_past_);  // (B, T, H*D)
    Tensor& kc = cache_->k(layer);                          // (B, Hkv, cap, D)
    Tensor& vc = cache_->v(layer);
    if (uniform_) {
      kc.narrow(2, past_[0], k.size(2)).copy_(k);
      vc.narrow(2, past_[0], v.size(2)).copy_(v);
    } else {
      for (int64_t b = 0; b < static_cast<int64_t>(past_.size()); ++b) {
        kc[b].narrow(1, past_[b], lengths_[b]).copy_(k[b].narrow(1, 0, lengths_[b]));
        vc[b].narrow(1, past_[b], lengths_[b]).copy_(v[b].narrow(1, 0, lengths_[b]));
      }
    }
    Tensor k_all = kc.narrow(2, 0, keys_);  // (B, Hkv, Lk, D)
    Tensor v_all = vc.narrow(2, 0, keys_);
    return attend(q, k_all, v_all, mask_, max_past_);  // (B, T, H*D)
  }

 private:
  KVCache* cache_;
  const std::vector<int64_t>& past_;
  const std::vector<int64_t>& lengths_;
  bool uniform_;
  int64_t keys_, max_past_;
  Tensor mask_;
};

// Decoder::decode_step: row b has a batch-1 cache of its own and one new position,
// pos[b]. Each row attends to exactly its own keys: no mask, no padding, and rows at
// very different lengths cost nothing extra.
class RowCachesKV final : public StepKV {
 public:
  // caches and pos must outlive this object.
  RowCachesKV(const std::vector<KVCache*>& caches, const std::vector<int64_t>& pos)
      : caches_(caches), pos_(pos), k_rows_(caches.size()), v_rows_(caches.size()) {}

  Tensor append_and_attend(int64_t layer, const Tensor& q, const Tensor& k,
                           const Tensor& v) override {
    const int64_t B = q.size(0);
    for (int64_t b = 0; b < B; ++b) {
      Tensor& kc = caches_[b]->k(layer);  // (1, Hkv, cap, D)
      Tensor& vc = caches_[b]->v(layer);
      kc.narrow(2, pos_[b], 1).copy_(k.narrow(0, b, 1));
      vc.narrow(2, pos_[b], 1).copy_(v.narrow(0, b, 1));
      k_rows_[b] = kc.narrow(2, 0, pos_[b] + 1);  // (1, Hkv, L_b, D)
      v_rows_[b] = vc.narrow(2, 0, pos_[b] + 1);
    }
    Tensor attn = attend_decode(q, k_rows_, v_rows_);  // (B, 1, H*D)
    if (attn.defined()) return attn;
    out_rows_.resize(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      // (1, 1, H*D)
      out_rows_[b] = attend(q.narrow(0, b, 1), k_rows_[b], v_rows_[b], Tensor(), pos_[b]);
    }
    return torch::cat(out_rows_, 0);
  }

 private:
  const std::vector<KVCache*>& caches_;
  const std::vector<int64_t>& pos_;
  std::vector<Tensor> k_rows_, v_rows_, out_rows_;  // reused across layers
};

// One projection y = x W^T (+ b) (+ scale * B (A x)): llama.cpp's build_lora_mm, the
// single choke point where adapters apply.
class Linear : public torch::nn::Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, const DecoderOptions& o) : in_(in), out_(out) {
    weight_ = register_parameter("weight", placeholder({out, in}, o), /*requires_grad=*/false);
    if (bias) bias_ = register_parameter("bias", placeholder({out}, o), false);
  }

  // (..., in) -> (..., out), with the LoRA delta `lora` holds for `target` of `layer`.
  Tensor operator()(const Tensor& x, const StepLora& lora, int64_t layer, Target target) const {
    if (lora.per_row()) return with_row_groups(x, lora.groups(), layer, target);
    const Adapter* a = lora.adapter();
    return with_pair(x, a ? a->find(layer, target) : nullptr, a ? a->scale() : 0.0);
  }
  // (..., in) -> (..., out), no adapter (lm_head).
  Tensor operator()(const Tensor& x) const { return with_pair(x, nullptr, 0.0); }

  const Tensor& weight() const { return weight_; }

 private:
  // One pair (or none) on every row.
  Tensor with_pair(const Tensor& x, const LoraPair* lora, double scale) const {
    const bool single_row = x.numel() == in_ && !torch::GradMode::is_enabled();
    Tensor y;
    if (single_row) {
      // torch 1.13's linear on one row is ~3x slower than mv on the same weights.
      Tensor v = x.reshape({in_});
      y = bias_.defined() ? torch::addmv(bias_, weight_, v) : torch::mv(weight_, v);
      if (lora) y.add_(torch::mv(lora->b, torch::mv(lora->a, v)), scale);
      auto shape = x.sizes().vec();
      shape.back() = out_;
      return y.view(shape);
    }
    y = base_few_rows(x);
    if (!y.defined()) y = torch::linear(x, weight_, bias_);
    if (lora) y = y + scale * torch::linear(torch::linear(x, lora->a), lora->b);
    return y;
  }

  // A different adapter per group of rows (inference): the base product runs once for
  // all rows, each group adds its B (A x) on its own rows.
  Tensor with_row_groups(const Tensor& x, const std::vector<StepLora::Group>& groups, int64_t layer,
                         Target target) const {
    Tensor y = with_pair(x, nullptr, 0.0);  // (B, ..., out)
    for (const StepLora::Group& g : groups) {
      const LoraPair* p = g.adapter->find(layer, target);
      if (!p) continue;
      if (!g.rows.defined()) {
        y.add_(torch::linear(torch::linear(x, p->a), p->b), g.adapter->scale());
        continue;
      }
      Tensor xs = x.index_select(0, g.rows);
      y.index_add_(0, g.rows,
                   torch::linear(torch::linear(xs, p->a), p->b).mul_(g.adapter->scale()));
    }
    return y;
  }

  // x W^T (+ b) by linear_few_rows for 2..kFewRowsMax rows (a batched decode step, a
  // short prefill); undefined when it does not apply.
  Tensor base_few_rows(const Tensor& x) const {
    const int64_t rows = x.numel() / in_;
    if (rows < 2 || rows > kFewRowsMax) return {};
    Tensor y = linear_few_rows(x.reshape({rows, in_}).contiguous(), weight_);
    if (!y.defined()) return {};
    if (bias_.defined()) y.add_(bias_);
    auto shape = x.sizes().vec();
    shape.back() = out_;
    return y.view(shape);
  }

  int64_t in_, out_;
  Tensor weight_, bias_;
};

class RMSNorm : public torch::nn::Module {
 public:
  RMSNorm(int64_t dim, double eps, const DecoderOptions& o) : eps_(eps) {
    weight_ = register_parameter("weight", placeholder({dim}, o), false);
  }
  Tensor operator()(const Tensor& x) const { return rms_norm(x, weight_, eps_); }

 private:
  double eps_;
  Tensor weight_;
};

// HF Qwen3Attention (Qwen2Attention, LlamaAttention without q/k norm).
class Attention : public torch::nn::Module {
 public:
  Attention(int64_t layer, const ModelConfig& c, const DecoderOptions& o)
      : layer_(layer), H_(c.num_attention_heads), Hkv_(c.num_key_value_heads), D_(c.head_dim) {
    const int64_t C = c.hidden_size, H = H_, Hkv = Hkv_, D = D_;
    q_proj = register_module("q_proj", std::make_shared<Linear>(C, H * D, c.attention_bias, o));
    k_proj = register_module("k_proj", std::make_shared<Linear>(C, Hkv * D, c.attention_bias, o));
    v_proj = register_module("v_proj", std::make_shared<Linear>(C, Hkv * D, c.attention_bias, o));
    o_proj = register_module("o_proj", std::make_shared<Linear>(H * D, C, c.o_proj_bias, o));
    if (c.qk_norm) {
      q_norm = register_module("q_norm", std::make_shared<RMSNorm>(D, c.rms_norm_eps, o));
      k_norm = register_module("k_norm", std::make_shared<RMSNorm>(D, c.rms_norm_eps, o));
    }
  }

  // h (B, T, C) -> (B, T, C); stores this layer's keys and values through kv.
  Tensor forward(const Tensor& h, const StepRope& rope, const StepLora& lora, StepKV& kv) const {
    const int64_t B = h.size(0), T = h.size(1);
    Tensor q = (*q_proj)(h, lora, layer_, Target::kQ).view({B, T, H_, D_});
    Tensor k = (*k_proj)(h, lora, layer_, Target::kK).view({B, T, Hkv_, D_});
    Tensor v = (*v_proj)(h, lora, layer_, Target::kV).view({B, T, Hkv_, D_});
    if (q_norm) {  // Qwen3: per-head RMSNorm over D, before RoPE
      q = (*q_norm)(q);
      k = (*k_norm)(k);
    }
    q = rope(q);                                          // (B, T, H, D)
    k = rope(k).permute({0, 2, 1, 3});                    // (B, Hkv, T, D)
    v = v.permute({0, 2, 1, 3});                          // (B, Hkv, T, D)
    Tensor attn = kv.append_and_attend(layer_, q, k, v);  // (B, T, H*D)
    return (*o_proj)(attn, lora, layer_, Target::kO);     // (B, T, C)
  }

  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj;
  std::shared_ptr<RMSNorm> q_norm, k_norm;  // null without qk_norm

 private:
  int64_t layer_, H_, Hkv_, D_;
};

// HF Qwen3MLP: down(silu(gate(h)) * up(h)).
class Mlp : public torch::nn::Module {
 public:
  Mlp(int64_t layer, const ModelConfig& c, const DecoderOptions& o) : layer_(layer) {
    gate_proj = register_module(
        "gate_proj", std::make_shared<Linear>(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
    up_proj = register_module(
        "up_proj", std::make_shared<Linear>(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
    down_proj = register_module(
        "down_proj", std::make_shared<Linear>(c.intermediate_size, c.hidden_size, c.mlp_bias, o));
  }

  // h (B, T, C) -> (B, T, C)
  Tensor forward(const Tensor& h, const StepLora& lora) const {
    Tensor gate = (*gate_proj)(h, lora, layer_, Target::kGate);  // (B, T, I)
    Tensor up = (*up_proj)(h, lora, layer_, Target::kUp);        // (B, T, I)
    return (*down_proj)(torch::silu(gate) * up, lora, layer_, Target::kDown);
  }

  std::shared_ptr<Linear> gate_proj, up_proj, down_proj;

 private:
  int64_t layer_;
};

// HF Qwen3DecoderLayer: pre-norm attention and MLP blocks, each added to the residual
// stream. The one layer body for prefill, training and batched decode.
class DecoderLayer : public torch::nn::Module {
 public:
  DecoderLayer(int64_t layer, const ModelConfig& c, const DecoderOptions& o) {
    self_attn = register_module("self_attn", std::make_shared<Attention>(layer, c, o));
    mlp = register_module("mlp", std::make_shared<Mlp>(layer, c, o));
    input_layernorm =
        register_module("input_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, o));
    post_attention_layernorm = register_module(
        "post_attention_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, o));
  }

  // x (B, T, C) -> (B, T, C)
  Tensor forward(const Tensor& x, const StepRope& rope, const StepLora& lora, StepKV& kv) const {
    Tensor h = x + self_attn->forward((*input_layernorm)(x), rope, lora, kv);  // (B, T, C)
    return h + mlp->forward((*post_attention_layernorm)(h), lora);             // (B, T, C)
  }

  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<Mlp> mlp;
  std::shared_ptr<RMSNorm> input_layernorm, post_attention_layernorm;
};

namespace {

// HF modeling_rope_utils: _compute_default_rope_parameters, linear and llama3 scaling.
Tensor compute_inv_freq(const ModelConfig& c) {
  const int64_t D = c.head_dim;
  Tensor inv_freq =
      1.0 / torch::pow(c.rope_theta, torch::arange(0, D, 2, torch::kInt64).to(torch::kFloat) / D);
  const RopeScaling& s = c.rope_scaling;
  if (s.kind == RopeScaling::Kind::kLinear) return inv_freq / s.factor;
  if (s.kind == RopeScaling::Kind::kLlama3) {
    const double old_len = static_cast<double>(s.original_max_position_embeddings);
    const double low_wavelen = old_len / s.low_freq_factor;
    const double high_wavelen = old_len / s.high_freq_factor;
    Tensor wavelen = 2 * M_PI / inv_freq;
    Tensor scaled = torch::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
    Tensor smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    return torch::where(medium, smoothed, scaled);
  }
  return inv_freq;
}

}  // namespace

Decoder::Decoder(ModelConfig config, DecoderOptions options)
    : config_(std::move(config)), options_(options) {
  const ModelConfig& c = config_;
  auto body = register_module("model", std::make_shared<torch::nn::Module>());
  embed_ = placeholder({c.vocab_size, c.hidden_size}, options_);
  auto embed = body->register_module("embed_tokens", std::make_shared<torch::nn::Module>());
  embed_ = embed->register_parameter("weight", embed_, false);
  auto layers = body->register_module("layers", std::make_shared<torch::nn::Module>());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    layers_.push_back(
        layers->register_module(std::to_string(l), std::make_shared<DecoderLayer>(l, c, options_)));
  }
  norm_ = body->register_module("norm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, options_));
  if (!c.tie_word_embeddings) {
    lm_head_ = register_module("lm_head",
                               std::make_shared<Linear>(c.hidden_size, c.vocab_size, false, options_));
  }
  inv_freq_ = compute_inv_freq(c).to(options_.device);
}

std::vector<std::pair<std::string, std::vector<int64_t>>> Decoder::parameter_shapes() const {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& p : named_parameters(/*recurse=*/true)) out.emplace_back(p.key(), p.value().sizes().vec());
  return out;
}

std::vector<std::pair<std::string, Tensor>> Decoder::named_weights() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& p : named_parameters(true)) out.emplace_back(p.key(), p.value());
  return out;
}

void Decoder::set_weight(const std::string& name, const Tensor& value) {
  auto params = named_parameters(true);
  Tensor* p = params.find(name);
  if (!p) throw std::invalid_argument("model has no parameter '" + name + "'");
  if (p->sizes() != value.sizes()) {
    throw std::invalid_argument("parameter '" + name + "': expected shape " +
                                c10::str(p->sizes()) + ", got " + c10::str(value.sizes()));
  }
  torch::NoGradGuard no_grad;
  p->set_data(value.to(options_.device, options_.dtype));
}

std::pair<Tensor, Tensor> Decoder::rope_tables(int64_t positions) const {
  std::lock_guard<std::mutex> lock(rope_mu_);
  if (!rope_cos_.defined() || rope_cos_.size(0) < positions) {
    int64_t n = std::max<int64_t>(positions, 256);
    if (rope_cos_.defined()) n = std::max(n, 2 * rope_cos_.size(0));
    torch::NoGradGuard no_grad;
    Tensor t = torch::arange(n, torch::TensorOptions().device(options_.device).dtype(torch::kFloat));
    Tensor freqs = torch::outer(t, inv_freq_);  // (P, D/2)
    Tensor emb = torch::cat({freqs, freqs}, -1);  // (P, D)
    rope_cos_ = emb.cos();
    rope_sin_ = emb.sin();
  }
  return {rope_cos_, rope_sin_};
}

StepRope Decoder::rope_at(const Tensor& pos, int64_t positions) const {
  auto [cos_table, sin_table] = rope_tables(positions);
  const int64_t B = pos.size(0), T = pos.size(1), D = config_.head_dim;
  Tensor flat = pos.flatten();
  return {cos_table.index_select(0, flat).view({B, T, 1, D}).to(options_.dtype),
          sin_table.index_select(0, flat).view({B, T, 1, D}).to(options_.dtype)};
}

Tensor Decoder::run_layers(const Tensor& ids, KVCache* cache, const Adapter* adapter,
                           const std::vector<int64_t>& lengths_in) const {
  const ModelConfig& c = config_;
  if (ids.dim() != 2) throw std::invalid_argument("forward: ids must be (B, T)");
  const int64_t B = ids.size(0), T = ids.size(1);
  if (T == 0) throw std::invalid_argument("forward: empty input");
  if (adapter && adapter->num_layers() != c.num_hidden_layers) {
    throw std::invalid_argument("forward: adapter was made for a model with " +
                                std::to_string(adapter->num_layers()) + " layers, this one has " +
                                std::to_string(c.num_hidden_layers));
  }
  std::vector<int64_t> lengths = lengths_in.empty() ? std::vector<int64_t>(B, T) : lengths_in;
  if (static_cast<int64_t>(lengths.size()) != B) throw std::invalid_argument("forward: lengths size != B");
  if (cache && cache->batch() != B) throw std::invalid_argument("forward: cache batch != B");
  std::vector<int64_t> past(B, 0);
  bool uniform = true;
  for (int64_t b = 0; b < B; ++b) {
    if (lengths[b] < 1 || lengths[b] > T) throw std::invalid_argument("forward: bad length");
    if (cache) past[b] = cache->length(b);
    uniform = uniform && lengths[b] == T && past[b] == past[0];
  }
  int64_t keys = 0;  // Lk: key positions attention looks at
  for (int64_t b = 0; b < B; ++b) keys = std::max(keys, past[b] + lengths[b]);
  if (cache) cache->reserve(keys);

  const auto dev = options_.device;
  const auto i64 = torch::TensorOptions().device(dev).dtype(torch::kInt64);
  Tensor past_t = torch::tensor(past, torch::kInt64).to(dev);                   // (B)
  Tensor end_t = past_t + torch::tensor(lengths, torch::kInt64).to(dev);        // (B)
  Tensor pos = past_t.unsqueeze(1) + torch::arange(T, i64).unsqueeze(0);        // (B, T)
  const StepRope rope = rope_at(pos, keys + T);

  // Additive mask (B, 1, 1, T, Lk): key j is visible to query t of row b when
  // j <= past_b + t (causal) and j < past_b + len_b (not padding). A single decode step
  // sees every key, so it needs none.
  Tensor mask;
  if (!(B == 1 && T == 1)) {
    Tensor j = torch::arange(keys, i64);                                          // (Lk)
    Tensor visible = (j.view({1, 1, keys}) <= pos.unsqueeze(2))
                         .logical_and(j.view({1, 1, keys}) < end_t.view({B, 1, 1}));  // (B, T, Lk)
    mask = torch::zeros({B, T, keys}, torch::TensorOptions().device(dev).dtype(options_.dtype))
               .masked_fill(visible.logical_not(), -std::numeric_limits<float>::infinity())
               .view({B, 1, 1, T, keys});
  }
  const StepLora lora(adapter);
  BatchCacheKV kv(cache, past, lengths, uniform, keys, std::move(mask));

  Tensor x = embed_.index_select(0, ids.flatten()).view({B, T, c.hidden_size});  // (B, T, C)
  for (const auto& layer : layers_) x = layer->forward(x, rope, lora, kv);       // (B, T, C)
  if (cache) {
    for (int64_t b = 0; b < B; ++b) cache->advance(b, lengths[b]);
  }
  return (*norm_)(x);  // (B, T, C)
}

Tensor Decoder::decode_step(const std::vector<int64_t>& ids, const std::vector<KVCache*>& caches,
                           const std::vector<const Adapter*>& adapters) const {
  const ModelConfig& c = config_;
  const int64_t B = static_cast<int64_t>(ids.size());
  if (B == 0) throw std::invalid_argument("decode_step: empty batch");
  if (caches.size() != ids.size() || adapters.size() != ids.size()) {
    throw std::invalid_argument("decode_step: ids, caches and adapters differ in size");
  }
  for (int64_t b = 0; b < B; ++b) {
    if (!caches[b] || caches[b]->batch() != 1) {
      throw std::invalid_argument("decode_step: every row needs its own batch-1 cache");
    }
    if (adapters[b] && adapters[b]->num_layers() != c.num_hidden_layers) {
      throw std::invalid_argument("decode_step: adapter was made for a model with " +
                                  std::to_string(adapters[b]->num_layers()) +
                                  " layers, this one has " + std::to_string(c.num_hidden_layers));
    }
  }
  if (B == 1) {
    return forward(torch::tensor(ids, torch::kInt64).view({1, 1}), caches[0], adapters[0],
                   LogitsFor::kLast);
  }
  const auto dev = options_.device;
  std::vector<int64_t> pos(B);  // row b's new position
  for (int64_t b = 0; b < B; ++b) {
    pos[b] = caches[b]->length(0);
    caches[b]->reserve(pos[b] + 1);
  }
  Tensor pos_t = torch::tensor(pos, torch::kInt64).to(dev).view({B, 1});  // (B, T = 1)
  const StepRope rope = rope_at(pos_t, *std::max_element(pos.begin(), pos.end()) + 1);
  const StepLora lora(adapters, dev);
  RowCachesKV kv(caches, pos);

  Tensor x = embed_.index_select(0, torch::tensor(ids, torch::kInt64).to(dev))
                 .view({B, 1, c.hidden_size});                              // (B, 1, C)
  for (const auto& layer : layers_) x = layer->forward(x, rope, lora, kv);  // (B, 1, C)
  for (KVCache* cache : caches) cache->advance(0, 1);
  return lm_head((*norm_)(x).view({B, c.hidden_size}));  // (B, V)
}

Tensor Decoder::hidden_states(const Tensor& ids, KVCache* cache, const Adapter* adapter,
                              const std::vector<int64_t>& lengths) const {
  return run_layers(ids.to(options_.device, torch::kInt64), cache, adapter, lengths);
}

Tensor Decoder::lm_head(const Tensor& hidden) const {
  if (lm_head_) return (*lm_head_)(hidden);
  if (hidden.dim() == 2 && !torch::GradMode::is_enabled()) {  // (B, C): a batched decode step
    Tensor y = linear_few_rows(hidden.contiguous(), embed_);
    if (y.defined()) return y;
  }
  if (hidden.numel() == config_.hidden_size && !torch::GradMode::is_enabled()) {
    auto shape = hidden.sizes().vec();
    shape.back() = config_.vocab_size;
    return torch::mv(embed_, hidden.reshape({config_.hidden_size})).view(shape);
  }
  return torch::linear(hidden, embed_);
}

const Tensor& Decoder::lm_head_weight() const { return lm_head_ ? lm_head_->weight() : embed_; }

Tensor Decoder::forward(const Tensor& ids_in, KVCache* cache, const Adapter* adapter, LogitsFor which,
                        const std::vector<int64_t>& lengths) const {
  Tensor ids = ids_in.to(options_.device, torch::kInt64);
  Tensor hidden = run_layers(ids, cache, adapter, lengths);  // (B, T, C)
  if (which == LogitsFor::kAll) return lm_head(hidden);      // (B, T, V)
  const int64_t B = hidden.size(0), T = hidden.size(1);
  Tensor last;
  if (lengths.empty()) {
    last = hidden.select(1, T - 1);  // (B, C)
  } else {
    Tensor idx = torch::tensor(lengths, torch::kInt64).to(hidden.device()) - 1;
    last = hidden.index({torch::arange(B, idx.options()), idx});  // (B, C)
  }
  return lm_head(last);  // (B, V)
}

}  // namespace kaizen::model
