// Chat-log write throughput: messages appended per second with the default durability
// (WAL, no fsync: survives a kaizend crash, not a power loss) against sync=true (fsync
// per message), measured in the same run on the same disk.
//
// usage: storage_log_bench [--dir D] [--messages N] [--sync-messages N] [--bytes B]
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "storage/store.h"

using namespace kaizen::storage;

namespace {

struct Result_ {
  const char* mode;
  int messages;
  double seconds;
};

Result_ run(const std::string& dir, bool sync, int messages, size_t bytes) {
  std::filesystem::remove_all(dir);
  StoreOptions o;
  o.sync_chat_log = sync;
  auto store = Store::open(dir, o);
  if (!store.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), store.status().ToString().c_str());
    std::exit(1);
  }
  auto conv = (*store)->create_conversation({});
  if (!conv.ok()) std::exit(1);
  Message m;
  m.conversation_id = conv->id;
  m.role = "assistant";
  m.content.assign(bytes, 'x');
  m.prompt_tokens = 300;
  m.completion_tokens = 120;
  m.adapter_version = 3;
  // Warm-up: the first id reservation and memtable allocation are not steady state.
  for (int i = 0; i < 10; ++i) (void)(*store)->append_message(m);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < messages; ++i) {
    m.role = i % 2 ? "assistant" : "user";
    auto r = (*store)->append_message(m);
    if (!r.ok()) {
      std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
      std::exit(1);
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {sync ? "WAL + fsync (sync=true)" : "WAL, no fsync (default)", messages, s};
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir =
      (std::filesystem::temp_directory_path() / ("kaizen-log-bench-" + std::to_string(getpid())))
          .string();
  int messages = 20000, sync_messages = 1000;
  size_t bytes = 400;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--dir"))
      dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--messages"))
      messages = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--sync-messages"))
      sync_messages = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--bytes"))
      bytes = std::strtoul(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  const Result_ fast = run(dir + "/wal", false, messages, bytes);
  const Result_ slow = run(dir + "/sync", true, sync_messages, bytes);
  std::filesystem::remove_all(dir);
  const double fast_rate = fast.messages / fast.seconds, slow_rate = slow.messages / slow.seconds;
  std::printf("storage_log_bench: append_message, %zu-byte content, dir %s\n", bytes, dir.c_str());
  std::printf("%-26s %10s %10s %12s %10s\n", "durability", "messages", "seconds", "msgs/s",
              "us/msg");
  for (const Result_* r : {&fast, &slow}) {
    std::printf("%-26s %10d %10.3f %12.0f %10.1f\n", r->mode, r->messages, r->seconds,
                r->messages / r->seconds, 1e6 * r->seconds / r->messages);
  }
  std::printf("ratio (no fsync / fsync): %.1fx\n", fast_rate / slow_rate);
  return 0;
}
