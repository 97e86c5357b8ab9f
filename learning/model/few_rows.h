// y = x W^T for a few rows: the projections of a batched decode step (one row per
// concurrent chat) and of short prefills.
//
// Decode is bound by reading the weights, so a batch of B rows should cost about one
// row. torch::linear hands such a product to OpenBLAS's sgemm, which first packs all
// of W into panels: for a handful of rows the packing costs more than the product, and
// B = 4 rows took 4x one row's mv (bench/decode_bench "concurrent decode"). This kernel
// streams each row block of W once for all rows instead (an AVX2/FMA micro-kernel of 3
// weight rows x 4 input rows), split by output rows across the compute threads.
//
// Thread-safety: any thread may call it. The worker pool serves one call at a time; a
// call that finds it busy (the learner and the engine at once) runs on its own thread.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace kaizen::model {

// Rows the kernel takes; above it sgemm's packing pays for itself.
inline constexpr int64_t kFewRowsMax = 16;

// y (B, out) = x (B, in) W (out, in)^T when the kernel applies: fp32, CPU, x and w
// contiguous, 2 <= B <= kFewRowsMax, no autograd, a CPU with AVX2 and FMA. Otherwise
// returns an undefined tensor and the caller uses torch::linear. Results equal
// torch::linear's within float rounding (a different summation order).
torch::Tensor linear_few_rows(const torch::Tensor& x, const torch::Tensor& w);

// Threads linear_few_rows splits a product over (the caller + workers). Defaults to the
// hardware threads; set_compute_threads() sets it to the compute threads.
void set_few_rows_threads(int threads);
int few_rows_threads();

}  // namespace kaizen::model
