#include "learning/model/cpu_kernels.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <torch/torch.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KAIZEN_CPU_KERNELS_X86 1
#endif

namespace kaizen::model {
namespace {

std::atomic<int> g_threads{0};  // 0 = hardware threads

// Worker threads for linear_few_rows: for a product split in n parts, the caller runs
// part 0 and worker i part i. Workers sleep on a condition variable between calls (no spinning: the cores
// are shared with OpenBLAS's pool and the I/O threads).
class RowSplitPool {
 public:
  ~RowSplitPool() { stop_workers(); }

  using Job = std::function<void(int part, int parts)>;

  // Runs fn(part, n) for part in [0, n), n = kernel_threads(), and returns true;
  // false without running anything when another call holds the pool, or in a child
  // process forked after the pool was made (its workers did not survive the fork).
  bool try_run(const Job& fn) {
    if (::getpid() != owner_) return false;
    std::unique_lock<std::mutex> run(run_mu_, std::try_to_lock);
    if (!run.owns_lock()) return false;
    const int wanted = kernel_threads();
    if (wanted != static_cast<int>(workers_.size()) + 1) {
      stop_workers();
      start_workers(wanted - 1);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      pending_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    fn(0, static_cast<int>(workers_.size()) + 1);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
    return true;
  }

 private:
  void start_workers(int n) {
    uint64_t start;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = false;
      start = generation_;  // read here, not in the thread: the first job may come first
    }
    for (int i = 1; i <= n; ++i) {
      workers_.emplace_back([this, i, n, start] {
        uint64_t seen = start;
        while (true) {
          const Job* job;
          {
            std::unique_lock<std::mutex> lock(mu_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            job = job_;
          }
          (*job)(i, n + 1);
          std::lock_guard<std::mutex> lock(mu_);
          if (--pending_ == 0) done_.notify_one();
        }
      });
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  const pid_t owner_ = ::getpid();
  std::mutex run_mu_;  // one product at a time; guards workers_
  std::mutex mu_;      // guards job_, pending_, generation_, stop_
  std::condition_variable wake_, done_;
  const Job* job_ = nullptr;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

RowSplitPool& pool() {
  static RowSplitPool* p = new RowSplitPool();  // never destroyed: no join at exit
  return *p;
}

#ifdef KAIZEN_CPU_KERNELS_X86

__attribute__((target("avx2,fma"))) inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[b][r] = dot(w row r, x row b) for R weight rows and BT input rows: R x BT
// accumulators stay in registers (at most 12 + R + 1 of AVX2's 16), each weight load
// feeds BT FMAs and each input load R.
template <int R, int BT>
__attribute__((target("avx2,fma"))) void tile(const float* w, const float* x, float* y, int64_t in,
                                              int64_t out) {
  __m256 acc[R][BT];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int b = 0; b < BT; ++b) acc[r][b] = _mm256_setzero_ps();
  }
  int64_t i = 0;
  for (; i + 8 <= in; i += 8) {
    __m256 wv[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) wv[r] = _mm256_loadu_ps(w + r * in + i);
#pragma GCC unroll 4
    for (int b = 0; b < BT; ++b) {
      const __m256 xv = _mm256_loadu_ps(x + b * in + i);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][b] = _mm256_fmadd_ps(wv[r], xv, acc[r][b]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int b = 0; b < BT; ++b) {
      float s = horizontal_sum(acc[r][b]);
      for (int64_t j = i; j < in; ++j) s += w[r * in + j] * x[b * in + j];
      y[b * out + r] = s;
    }
  }
}

template <int R>
void tile_rows(const float* w, const float* x, float* y, int64_t in, int64_t out, int64_t rows) {
  switch (rows) {
    case 4: return tile<R, 4>(w, x, y, in, out);
    case 3: return tile<R, 3>(w, x, y, in, out);
    case 2: return tile<R, 2>(w, x, y, in, out);
    default: return tile<R, 1>(w, x, y, in, out);
  }
}

constexpr int64_t kTileOut = 3;  // weight rows per tile
constexpr int64_t kTileIn = 4;   // input rows per tile

// Output columns [o0, o1) of y (B, out) = x (B, in) w (out, in)^T. The weight rows of a
// tile stay in L1 while every input row passes over them.
void product_part(const float* w, const float* x, float* y, int64_t B, int64_t in, int64_t out,
                  int64_t o0, int64_t o1) {
  for (int64_t o = o0; o < o1; o += kTileOut) {
    const int64_t r = std::min(kTileOut, o1 - o);
    for (int64_t b = 0; b < B; b += kTileIn) {
      const int64_t rows = std::min(kTileIn, B - b);
      const float* wp = w + o * in;
      const float* xp = x + b * in;
      float* yp = y + b * out + o;
      if (r == 3) {
        tile_rows<3>(wp, xp, yp, in, out, rows);
      } else if (r == 2) {
        tile_rows<2>(wp, xp, yp, in, out, rows);
      } else {
        tile_rows<1>(wp, xp, yp, in, out, rows);
      }
    }
  }
}

// ---- decode attention -------------------------------------------------------------

// scores[r][j] = scale * q[r] . k_j for the REP query heads of one kv head: each key
// row is loaded once for all of them.
template <int REP>
__attribute__((target("avx2,fma"))) void attention_scores(const float* q, const float* k, int64_t length,
                                                          int64_t D, float scale, float* scores) {
  for (int64_t j = 0; j < length; ++j) {
    const float* kj = k + j * D;
    __m256 acc[REP];
#pragma GCC unroll 8
    for (int r = 0; r < REP; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) {
      const __m256 kv = _mm256_loadu_ps(kj + d);
#pragma GCC unroll 8
      for (int r = 0; r < REP; ++r) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + r * D + d), kv, acc[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < REP; ++r) scores[r * length + j] = scale * horizontal_sum(acc[r]);
  }
}

// out[r] = sum_j p[r][j] v_j for the REP query heads of one kv head, CW vectors of D at a
// time: each value row is loaded once for all of them.
template <int REP, int CW>
__attribute__((target("avx2,fma"))) void attention_values(const float* p, const float* v, int64_t length,
                                                          int64_t D, float* out) {
  for (int64_t d0 = 0; d0 < D; d0 += 8 * CW) {
    __m256 acc[REP][CW];
#pragma GCC unroll 8
    for (int r = 0; r < REP; ++r) {
#pragma GCC unroll 4
      for (int c = 0; c < CW; ++c) acc[r][c] = _mm256_setzero_ps();
    }
    for (int64_t j = 0; j < length; ++j) {
      __m256 vv[CW];
#pragma GCC unroll 4
      for (int c = 0; c < CW; ++c) vv[c] = _mm256_loadu_ps(v + j * D + d0 + 8 * c);
#pragma GCC unroll 8
      for (int r = 0; r < REP; ++r) {
        const __m256 pr = _mm256_broadcast_ss(p + r * length + j);
#pragma GCC unroll 4
        for (int c = 0; c < CW; ++c) acc[r][c] = _mm256_fmadd_ps(pr, vv[c], acc[r][c]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < REP; ++r) {
#pragma GCC unroll 4
      for (int c = 0; c < CW; ++c) _mm256_storeu_ps(out + r * D + d0 + 8 * c, acc[r][c]);
    }
  }
}

// One kv head of one row: scores, softmax (torch's vectorised kernel, in place), values.
template <int REP>
void attention_group(const DecodeAttentionRow& row, int64_t g, int64_t D, float scale, std::vector<float>& scores) {
  const int64_t L = row.length;
  scores.resize(static_cast<size_t>(REP * L));
  const float* q = row.q + g * REP * D;
  attention_scores<REP>(q, row.k + g * row.head_stride, L, D, scale, scores.data());
  torch::Tensor s = torch::from_blob(scores.data(), {REP, L}, torch::kFloat);
  at::_softmax_out(s, s, -1, false);
  constexpr int kCw = REP <= 2 ? 4 : REP <= 4 ? 2 : 1;  // accumulators REP x CW <= 8
  float* out = row.out + g * REP * D;
  if (D % (8 * kCw) == 0) {
    attention_values<REP, kCw>(scores.data(), row.v + g * row.head_stride, L, D, out);
  } else {
    attention_values<REP, 1>(scores.data(), row.v + g * row.head_stride, L, D, out);
  }
}

using GroupFn = void (*)(const DecodeAttentionRow&, int64_t, int64_t, float, std::vector<float>&);

GroupFn attention_group_for(int64_t rep) {
  switch (rep) {
    case 1: return attention_group<1>;
    case 2: return attention_group<2>;
    case 3: return attention_group<3>;
    case 4: return attention_group<4>;
    case 5: return attention_group<5>;
    case 6: return attention_group<6>;
    case 7: return attention_group<7>;
    case 8: return attention_group<8>;
    default: return nullptr;
  }
}

bool cpu_has_avx2_fma() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

#endif  // KAIZEN_CPU_KERNELS_X86

}  // namespace

void set_kernel_threads(int threads) { g_threads.store(std::max(0, threads)); }

int kernel_threads() {
  const int t = g_threads.load();
  return t > 0 ? t : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

bool decode_attention(const std::vector<DecodeAttentionRow>& rows, int64_t H, int64_t Hkv, int64_t D,
                      float scale) {
#ifdef KAIZEN_CPU_KERNELS_X86
  if (!cpu_has_avx2_fma() || rows.empty() || Hkv < 1 || H % Hkv != 0 || D % 8 != 0) return false;
  const GroupFn group = attention_group_for(H / Hkv);
  if (!group) return false;
  // Work items: (row, kv head), split in contiguous slices, each part with its own
  // scores buffer.
  const int64_t items = static_cast<int64_t>(rows.size()) * Hkv;
  int64_t keys = 0;
  for (const auto& r : rows) keys += r.length;
  auto part = [&](int p, int n) {
    thread_local std::vector<float> scores;
    for (int64_t i = items * p / n; i < items * (p + 1) / n; ++i) {
      group(rows[static_cast<size_t>(i / Hkv)], i % Hkv, D, scale, scores);
    }
  };
  // Waking a worker pays off from a few thousand key rows on.
  if (keys * Hkv * D < (int64_t{1} << 16) || kernel_threads() == 1 || !pool().try_run(part)) part(0, 1);
  return true;
#else
  (void)rows;
  (void)H;
  (void)Hkv;
  (void)D;
  (void)scale;
  return false;
#endif
}

torch::Tensor linear_few_rows(const torch::Tensor& x, const torch::Tensor& w) {
#ifdef KAIZEN_CPU_KERNELS_X86
  if (!cpu_has_avx2_fma() || x.dim() != 2 || w.dim() != 2 || !x.device().is_cpu() ||
      !w.device().is_cpu() || x.scalar_type() != torch::kFloat || w.scalar_type() != torch::kFloat ||
      !x.is_contiguous() || !w.is_contiguous() || x.size(1) != w.size(1) || x.size(0) < 2 ||
      x.size(0) > kFewRowsMax || torch::GradMode::is_enabled()) {
    return {};
  }
  const int64_t B = x.size(0), in = x.size(1), out = w.size(0);
  torch::Tensor y = torch::empty({B, out}, x.options());
  const float* wp = w.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  // Contiguous slices of whole tiles, one per part.
  const int64_t tiles = (out + kTileOut - 1) / kTileOut;
  auto part = [=](int p, int n) {
    const int64_t t0 = tiles * p / n, t1 = tiles * (p + 1) / n;
    product_part(wp, xp, yp, B, in, out, std::min(out, t0 * kTileOut), std::min(out, t1 * kTileOut));
  };
  // Below ~64k multiply-adds waking a worker costs more than it saves; a busy pool
  // (another thread's product) means this one runs alone.
  if (B * in * out < (int64_t{1} << 16) || kernel_threads() == 1 || !pool().try_run(part)) part(0, 1);
  return y;
#else
  (void)x;
  (void)w;
  return {};
#endif
}

}  // namespace kaizen::model
