// CPU kernels for decode, where libtorch + OpenBLAS spend more time packing operands
// than computing (AVX2/FMA; other CPUs and devices fall back to torch's ops):
//
// linear_few_rows: y = x W^T for a few rows, the projections of a batched decode step
// (one row per concurrent chat) and of short prefills. Decode is bound by reading the
// weights, so a batch of B rows should cost about one row. torch::linear hands such a
// product to OpenBLAS's sgemm, which first packs all of W into panels: for a handful of
// rows the packing costs more than the product, and B = 4 rows took 4x one row's mv
// (bench/decode_bench "concurrent decode"). This kernel streams each row block of W once
// for all rows instead (a micro-kernel of 3 weight rows x 4 input rows), split by output
// rows across the compute threads.
//
// decode_attention: one new query position per sequence against its cached keys and
// values. torch's bmm packs the whole K and V of every kv head into panels first (three
// passes over the cache where one suffices), which with a long cached system message
// costs more than the projections. Here K is read once for all query heads of its
// group, scores get torch's vectorised softmax in place, V is read once.
//
// Thread-safety: any thread may call them. The worker pool serves one call at a time; a
// call that finds it busy (the learner and the engine at once) runs on its own thread.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace kaizen::model {

// Rows linear_few_rows takes; above it sgemm's packing pays for itself.
inline constexpr int64_t kFewRowsMax = 16;

// y (B, out) = x (B, in) W (out, in)^T when the kernel applies: fp32, CPU, x and w
// contiguous, 2 <= B <= kFewRowsMax, no autograd, a CPU with AVX2 and FMA. Otherwise
// returns an undefined tensor and the caller uses torch::linear. Results equal
// torch::linear's within float rounding (a different summation order).
torch::Tensor linear_few_rows(const torch::Tensor& x, const torch::Tensor& w);

// One sequence's part of a decode step for decode_attention (fp32, row-major):
struct DecodeAttentionRow {
  const float* q;       // (H, D): the new position's queries, after RoPE
  const float* k;       // kv head g, position j at k[g * head_stride + j * D]
  const float* v;       // same layout as k
  int64_t head_stride;  // elements from one kv head to the next (cache capacity x D)
  int64_t length;       // keys to attend to (>= 1): the cache length including this position
  float* out;           // (H, D)
};

// out[h] = softmax(scale * q[h] . K[g]^T) V[g] for every row and query head h, with
// g = h / (H / Hkv) (GQA). Returns false without touching anything when the kernel does
// not apply (no AVX2+FMA, D not a multiple of 8, more than 8 query heads per kv head);
// the caller then uses torch's ops.
bool decode_attention(const std::vector<DecodeAttentionRow>& rows, int64_t H, int64_t Hkv, int64_t D,
                      float scale);

// Threads the kernels split their work over (the caller + workers). Defaults to the
// hardware threads; set_compute_threads() sets it to the compute threads.
void set_kernel_threads(int threads);
int kernel_threads();

}  // namespace kaizen::model
