// linear_few_rows, the batched-decode projection kernel, against torch::linear: every
// tail (input width not a multiple of 8, output rows not a multiple of the 3-row tile,
// input rows not a multiple of 4), split across threads, and from two threads at once.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "learning/model/few_rows.h"

namespace kaizen::model {
namespace {

bool kernel_expected() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

TEST(FewRows, EqualsLinearForEveryTail) {
  if (!kernel_expected()) GTEST_SKIP() << "no AVX2+FMA: linear_few_rows falls back to torch::linear";
  torch::manual_seed(3);
  c10::InferenceMode guard;
  for (int threads : {1, 2, 3}) {
    set_few_rows_threads(threads);
    for (int64_t rows : {2, 3, 4, 5, 7, 8, 9, 16}) {
      for (auto [in, out] : std::vector<std::pair<int64_t, int64_t>>{{64, 48}, {67, 50}, {1024, 3072}, {13, 1}, {256, 7}}) {
        torch::Tensor x = torch::randn({rows, in});
        torch::Tensor w = torch::randn({out, in}) * 0.05;
        torch::Tensor y = linear_few_rows(x, w);
        ASSERT_TRUE(y.defined()) << rows << "x" << in << "x" << out;
        ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, out}));
        EXPECT_LT(max_rel_diff(y, torch::linear(x, w)), 1e-5) << rows << "x" << in << "x" << out << " threads " << threads;
      }
    }
  }
  set_few_rows_threads(0);
}

TEST(FewRows, DeclinesWhatItDoesNotHandle) {
  c10::InferenceMode guard;
  torch::Tensor w = torch::randn({32, 16});
  EXPECT_FALSE(linear_few_rows(torch::randn({1, 16}), w).defined());                // one row: mv is better
  EXPECT_FALSE(linear_few_rows(torch::randn({kFewRowsMax + 1, 16}), w).defined());  // sgemm's turf
  EXPECT_FALSE(linear_few_rows(torch::randn({4, 16}, torch::kBFloat16), w.to(torch::kBFloat16)).defined());
  EXPECT_FALSE(linear_few_rows(torch::randn({16, 4}).t(), w).defined());            // not contiguous
  EXPECT_FALSE(linear_few_rows(torch::randn({4, 15}), w).defined());                // shapes disagree
  {
    c10::InferenceMode off(false);
    torch::AutoGradMode grad(true);
    EXPECT_FALSE(linear_few_rows(torch::randn({4, 16}), w).defined());  // autograd needs torch's op
  }
}

TEST(FewRows, TwoThreadsAtOnceBothGetTheirProduct) {
  if (!kernel_expected()) GTEST_SKIP() << "no AVX2+FMA";
  torch::manual_seed(4);
  set_few_rows_threads(2);
  torch::Tensor w = torch::randn({3072, 1024}) * 0.05;
  std::atomic<int> bad{0};
  auto worker = [&](int seed) {
    c10::InferenceMode guard;
    torch::Tensor x = torch::randn({6, 1024}, torch::TensorOptions().dtype(torch::kFloat)) * seed;
    torch::Tensor want = torch::linear(x, w);
    for (int i = 0; i < 50; ++i) {
      torch::Tensor y = linear_few_rows(x, w);
      if (!y.defined() || max_rel_diff(y, want) > 1e-5) ++bad;
    }
  };
  std::thread a(worker, 1), b(worker, 2);
  a.join();
  b.join();
  EXPECT_EQ(bad.load(), 0);
  set_few_rows_threads(0);
}

// A child forked after the workers started has none of them: its products run on its
// own thread instead of waiting for workers that do not exist.
TEST(FewRows, AForkedChildComputesAlone) {
  if (!kernel_expected()) GTEST_SKIP() << "no AVX2+FMA";
  set_few_rows_threads(2);
  c10::InferenceMode guard;
  torch::Tensor w = torch::randn({3072, 1024}) * 0.05;
  torch::Tensor x = torch::randn({4, 1024});
  ASSERT_TRUE(linear_few_rows(x, w).defined());  // the parent's pool is up
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    alarm(20);  // a hang shows as a signal, not a stuck test
    torch::Tensor y = linear_few_rows(x, w);
    const bool ok = y.defined() && max_rel_diff(y, torch::linear(x, w)) < 1e-5;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  set_few_rows_threads(0);
}

}  // namespace
}  // namespace kaizen::model
