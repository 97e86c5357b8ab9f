// The decode kernels against torch's ops. linear_few_rows: every tail (input width not
// a multiple of 8, output rows not a multiple of the 3-row tile, input rows not a
// multiple of 4), split across threads, from two threads at once, after fork().
// decode_attention: GQA group sizes 1-8, head sizes with and without the wide value
// tile, one key to hundreds, caches with spare capacity, rows of different lengths.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "learning/model/cpu_kernels.h"

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
    set_kernel_threads(threads);
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
  set_kernel_threads(0);
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
  set_kernel_threads(2);
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
  set_kernel_threads(0);
}

TEST(DecodeAttention, EqualsSoftmaxAttentionForEveryGroupSizeAndLength) {
  if (!kernel_expected()) GTEST_SKIP() << "no AVX2+FMA";
  torch::manual_seed(5);
  c10::InferenceMode guard;
  struct Shape {
    int64_t H, Hkv, D;
  };
  for (int threads : {1, 2}) {
    set_kernel_threads(threads);
    for (Shape sh : {Shape{16, 8, 128}, Shape{4, 4, 64}, Shape{8, 2, 64}, Shape{6, 2, 72}, Shape{8, 1, 32},
                     Shape{24, 3, 40}}) {
      const std::vector<int64_t> lengths = {1, 7, 300};
      const int64_t cap = 320;
      std::vector<torch::Tensor> qs, ks, vs;
      torch::Tensor out = torch::zeros({static_cast<int64_t>(lengths.size()), sh.H, sh.D});
      std::vector<DecodeAttentionRow> rows;
      for (size_t b = 0; b < lengths.size(); ++b) {
        qs.push_back(torch::randn({sh.H, sh.D}));
        ks.push_back(torch::randn({sh.Hkv, cap, sh.D}));
        vs.push_back(torch::randn({sh.Hkv, cap, sh.D}));
        rows.push_back({qs[b].data_ptr<float>(), ks[b].data_ptr<float>(), vs[b].data_ptr<float>(), cap * sh.D,
                        lengths[b], out[static_cast<int64_t>(b)].data_ptr<float>()});
      }
      const float scale = 1.0f / std::sqrt(static_cast<float>(sh.D));
      ASSERT_TRUE(decode_attention(rows, sh.H, sh.Hkv, sh.D, scale));
      for (size_t b = 0; b < lengths.size(); ++b) {
        const int64_t rep = sh.H / sh.Hkv, L = lengths[b];
        // (H, L): query head h reads kv head h / rep.
        torch::Tensor k = ks[b].narrow(1, 0, L).repeat_interleave(rep, 0);  // (H, L, D)
        torch::Tensor v = vs[b].narrow(1, 0, L).repeat_interleave(rep, 0);
        torch::Tensor p = torch::softmax(torch::bmm(k, qs[b].unsqueeze(2)).squeeze(2) * scale, -1);  // (H, L)
        torch::Tensor want = torch::bmm(p.unsqueeze(1), v).squeeze(1);                             // (H, D)
        EXPECT_LT((out[static_cast<int64_t>(b)] - want).abs().max().item<double>(), 1e-5)
            << "H " << sh.H << " Hkv " << sh.Hkv << " D " << sh.D << " L " << L << " threads " << threads;
      }
    }
  }
  set_kernel_threads(0);
  // What it does not take: head size not a multiple of 8, more than 8 query heads per kv head.
  float x[64] = {};
  std::vector<DecodeAttentionRow> one = {{x, x, x, 12, 1, x}};
  EXPECT_FALSE(decode_attention(one, 2, 1, 12, 1.0f));
  EXPECT_FALSE(decode_attention(one, 16, 1, 8, 1.0f));
}

// A child forked after the workers started has none of them: its products run on its
// own thread instead of waiting for workers that do not exist.
TEST(FewRows, AForkedChildComputesAlone) {
  if (!kernel_expected()) GTEST_SKIP() << "no AVX2+FMA";
  set_kernel_threads(2);
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
  set_kernel_threads(0);
}

}  // namespace
}  // namespace kaizen::model
