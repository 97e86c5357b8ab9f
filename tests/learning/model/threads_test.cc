#include "learning/model/threads.h"

#include <dlfcn.h>

#include <algorithm>
#include <thread>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace kaizen::model {
namespace {

TEST(ComputeThreads, GivesTheCoresToOnePool) {
  const ComputeThreads t = set_compute_threads(2);
  using GetThreads = int (*)();
  const auto openblas_threads = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (t.blas == "openblas-pthreads") {
    // The pthreads build keeps its own pool: it gets the threads, torch's pool one.
    ASSERT_NE(openblas_threads, nullptr);
    EXPECT_EQ(openblas_threads(), 2);
    EXPECT_EQ(t.blas_threads, 2);
    EXPECT_EQ(at::get_num_threads(), 1);
  } else {
    EXPECT_EQ(t.blas_threads, 0);
    EXPECT_EQ(at::get_num_threads(), 2);
  }
  EXPECT_EQ(t.torch_threads, at::get_num_threads());
  EXPECT_NE(t.describe().find(t.blas), std::string::npos);
}

TEST(ComputeThreads, NonPositiveMeansEveryHardwareThread) {
  const ComputeThreads t = set_compute_threads(0);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(t.blas == "openblas-pthreads" ? t.blas_threads : t.torch_threads, cores);
}

#ifdef KAIZEN_EXPECT_OPENBLAS_PTHREADS
// On the Debian set-up (libopenblas0-pthread) the split must actually be taken.
TEST(ComputeThreads, DebianOpenBlasIsDetected) { EXPECT_EQ(set_compute_threads(2).blas, "openblas-pthreads"); }
#endif

}  // namespace
}  // namespace kaizen::model
