// CPU thread set-up for torch + its BLAS.
//
// Debian's libtorch runs its element-wise ops on an OpenMP pool and its matmuls in
// the system BLAS. With libopenblas0-pthread, OpenBLAS keeps a second pool of its own
// threads. Both pools spin while idle, so with both at N threads on N cores every
// hand-over between an element-wise op and a matmul waits for the other pool's
// spinners to yield: measured on 2 cores (bench/decode_bench, Qwen3-0.6B shape),
// decode 3.6 tok/s with both pools at 2 threads against 10.6 tok/s with the matmul
// pool alone at 2. set_compute_threads() gives the cores to one pool.
#pragma once

#include <string>

namespace kaizen::model {

struct ComputeThreads {
  int torch_threads = 0;  // at::get_num_threads() afterwards
  int blas_threads = 0;   // the BLAS's own pool; 0 when it shares torch's (or is unknown)
  std::string blas;       // "openblas-pthreads", "openblas-openmp", "openblas-serial", "other"
  std::string describe() const;
};

// Uses `threads` cores (< 1: all hardware threads) for CPU compute. When the BLAS
// has its own thread pool (OpenBLAS, pthreads build) it gets the threads and torch's
// intra-op pool gets one; otherwise torch's pool gets them all. Call once at start-up,
// before the first parallel op.
ComputeThreads set_compute_threads(int threads);

}  // namespace kaizen::model
