#include "learning/model/threads.h"

#include <dlfcn.h>

#include <algorithm>
#include <thread>

#include <ATen/Parallel.h>

#include "learning/model/cpu_kernels.h"

namespace kaizen::model {
namespace {

// OpenBLAS's C API (cblas.h); looked up at run time so any BLAS links.
using GetParallelFn = int (*)();
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();

template <typename Fn>
Fn lookup(const char* name) {
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

std::string ComputeThreads::describe() const {
  std::string s = "torch " + std::to_string(torch_threads) + " thread(s), BLAS " + blas;
  if (blas_threads > 0) s += " " + std::to_string(blas_threads) + " thread(s)";
  return s;
}

ComputeThreads set_compute_threads(int threads) {
  if (threads < 1) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ComputeThreads out;
  out.blas = "other";
  const auto get_parallel = lookup<GetParallelFn>("openblas_get_parallel");
  const auto set_blas = lookup<SetThreadsFn>("openblas_set_num_threads");
  const auto get_blas = lookup<GetThreadsFn>("openblas_get_num_threads");
  int torch_threads = threads;
  if (get_parallel && set_blas && get_blas) {
    switch (get_parallel()) {
      case 0:
        out.blas = "openblas-serial";
        break;
      case 1:  // own pthread pool: it takes the cores, torch's OpenMP pool stays idle
        out.blas = "openblas-pthreads";
        set_blas(threads);
        torch_threads = 1;
        break;
      default:  // OpenMP build: shares torch's pool
        out.blas = "openblas-openmp";
        break;
    }
  }
  at::set_num_threads(torch_threads);
  set_kernel_threads(threads);
  out.torch_threads = at::get_num_threads();
  if (out.blas == "openblas-pthreads") out.blas_threads = get_blas();
  return out;
}

}  // namespace kaizen::model
