// kaizenctl's online commands against the real kaizend service (tiny model, temp state
// dir) served in-process on a Unix socket: the built kaizenctl binary is run as a child
// process and its exit codes, tables, --json output and streamed chat are checked.
// Expected answers come from the daemon's own HTTP API (raw client in tests/daemon), not
// from kaizenctl.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/config.h"
#include "daemon/serve/kaizen_service.h"
#include "daemon/http/server.h"
#include "http_client.h"
#include "real_server.h"
#include "learning/model/tiny.h"
#include "testing/kaizen_test.h"

namespace kaizen::daemon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace kaizen::daemon::testing;
using kaizen::testing::TempDir;

struct CtlResult {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string kaizenctl_path() {
  if (const char* d = std::getenv("KAIZEN_BIN_DIR")) return std::string(d) + "/kaizenctl";
  if (const char* d = std::getenv("KAIZEN_BUILD_DIR")) return std::string(d) + "/bin/kaizenctl";
  return "kaizenctl";
}

class KaizenctlOnline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_dir_ = new TempDir();
    model::TinyModelSpec spec;
    spec.seed = 5;
    model::write_tiny_model(spec, *model_dir_ / "m", kaizen::testing::tokenizer_dir());
  }
  static void TearDownTestSuite() { delete model_dir_; }

  void SetUp() override {
    ASSERT_TRUE(fs::exists(kaizenctl_path()))
        << kaizenctl_path() << " not built (set KAIZEN_BIN_DIR)";
    config_ = TestServer::default_config();
    config_.model = *model_dir_ / "m";
    config_.state_dir = (state_.path() / "state").string();
    config_.system_prompt = "You are {agent_name}.";
    config_.agent_name = "Kaizen";
    config_.device = "cpu";
    config_.threads = 1;
    config_.train.min_new_examples = 0;  // approvals below must not start training runs
    ASSERT_EQ(start_real_server(config_, &service_, &server_, &runner_), "");
  }
  void TearDown() override {
    stop_real_server(&service_, &server_, &runner_);
  }

  // Runs kaizenctl ARGS --socket <ours> with `input` on stdin.
  // env_socket: $KAIZEN_SOCKET for the child (unset when null).
  CtlResult ctl(std::vector<std::string> args, const std::string& input = "",
                bool add_socket = true, const char* env_socket = nullptr) {
    if (add_socket) {
      args.push_back("--socket");
      args.push_back(config_.socket);
    }
    const fs::path in = state_.path() / "stdin", out = state_.path() / "stdout",
                   err = state_.path() / "stderr";
    std::ofstream(in, std::ios::binary) << input;
    const std::string exe = kaizenctl_path();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
      int i = open(in.c_str(), O_RDONLY), o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600),
          e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(i, 0);
      dup2(o, 1);
      dup2(e, 2);
      if (env_socket) {
        ::setenv("KAIZEN_SOCKET", env_socket, 1);
      } else {
        ::unsetenv("KAIZEN_SOCKET");
      }
      execv(exe.c_str(), argv.data());
      _exit(127);
    }
    CtlResult r;
    int status = 0;
    waitpid(pid, &status, 0);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  HttpResponse api(const std::string& method, const std::string& path,
                   const json& body = json::object()) {
    return unix_request(config_.socket, make_request(method, path, body.dump()));
  }

  static TempDir* model_dir_;
  TempDir state_;
  Config config_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Server> server_;
  std::thread runner_;
};
TempDir* KaizenctlOnline::model_dir_ = nullptr;

#define EXPECT_CTL(r, want) \
  EXPECT_EQ((r).code, (want)) << "stdout:\n" << (r).out << "\nstderr:\n" << (r).err

TEST_F(KaizenctlOnline, StatusTableAndJsonMatchTheAdminRoute) {
  CtlResult r = ctl({"status"});
  EXPECT_CTL(r, 0);
  EXPECT_NE(r.out.find("active_adapter:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("base"), std::string::npos) << r.out;  // no adapter published yet

  CtlResult j = ctl({"status", "--json"});
  EXPECT_CTL(j, 0);
  json got = json::parse(j.out, nullptr, false);
  ASSERT_TRUE(got.is_object()) << j.out;
  json direct = api("POST", "/admin/status").json();
  EXPECT_EQ(got["architecture"], direct["architecture"]);
  EXPECT_EQ(got["model"], direct["model"]);
  EXPECT_EQ(got["active_adapter"], 0);
}

TEST_F(KaizenctlOnline, AdaptersListShowRollbackPin) {
  CtlResult r = ctl({"adapters", "list", "--json"});
  EXPECT_CTL(r, 0);
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["active"], 0);
  EXPECT_TRUE(j["adapters"].is_array());
  EXPECT_EQ(j["adapters"].size(), api("POST", "/admin/adapters").json()["adapters"].size());

  r = ctl({"adapters", "list"});
  EXPECT_CTL(r, 0);
  EXPECT_NE(r.out.find("active: base"), std::string::npos) << r.out;

  // Unknown versions: 404 from the daemon -> exit 3, with the daemon's message.
  r = ctl({"adapters", "show", "v9"});
  EXPECT_CTL(r, 3);
  EXPECT_NE(r.err.find("HTTP 404"), std::string::npos) << r.err;
  EXPECT_CTL(ctl({"adapters", "pin", "9"}), 3);
  EXPECT_CTL(ctl({"adapters", "rollback"}), 3);  // nothing earlier to roll back to
  r = ctl({"adapters", "rollback", "base"});  // already there: a no-op
  EXPECT_CTL(r, 0);
  EXPECT_NE(r.out.find("active adapter is now base"), std::string::npos) << r.out;
  EXPECT_CTL(ctl({"adapters", "rollback", "v9"}), 3);
  // Usage errors: exit 2.
  EXPECT_CTL(ctl({"adapters"}), 2);
  EXPECT_CTL(ctl({"adapters", "show"}), 2);
  EXPECT_CTL(ctl({"adapters", "frobnicate"}), 2);
  EXPECT_CTL(ctl({"adapters", "list", "--bogus"}), 2);
}

TEST_F(KaizenctlOnline, KnowledgeImportReportsBadLinesAndExportReturnsTheGoodOnes) {
  const fs::path file = state_.path() / "faq.jsonl";
  const json a = {{"messages",
                   {{{"role", "user"}, {"content", "What is Kaizen?"}},
                    {{"role", "assistant"}, {"content", "A self-improving assistant."}}}}};
  const json b = {{"messages",
                   {{{"role", "user"}, {"content", "Who made it?"}},
                    {{"role", "assistant"}, {"content", "Sabitech, in Kraków."}}}}};
  std::ofstream(file) << a.dump() << "\n{not json\n" << b.dump() << "\n";

  CtlResult r = ctl({"knowledge", "import", file.string()});
  EXPECT_CTL(r, 1);  // one bad line; the good ones are stored anyway
  EXPECT_NE(r.err.find("faq.jsonl:2:"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("2 imported"), std::string::npos) << r.out;

  // Idempotent: the second import finds duplicates.
  r = ctl({"knowledge", "import", file.string(), "--json"});
  EXPECT_CTL(r, 1);
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["imported"], 0);
  EXPECT_EQ(j["duplicates"], 2);
  ASSERT_EQ(j["errors"].size(), 1u);
  EXPECT_EQ(j["errors"][0]["line"], 2);

  EXPECT_CTL(ctl({"knowledge", "import", (state_.path() / "missing.jsonl").string()}), 3);

  // Export: the approved examples as OpenAI chat JSONL, the same messages as the file.
  const fs::path out = state_.path() / "export.jsonl";
  r = ctl({"feedback", "export", "--out", out.string()});
  EXPECT_CTL(r, 0);
  std::vector<json> lines;
  std::istringstream in(slurp(out));
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  std::set<std::string> got = {lines[0].dump(), lines[1].dump()};
  EXPECT_EQ(got, (std::set<std::string>{a.dump(), b.dump()}));

  r = ctl({"feedback", "export"});  // to stdout
  EXPECT_CTL(r, 0);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);
}

TEST_F(KaizenctlOnline, ChatStreamsTheSameGreedyTextAsTheApiAndKeepsHistory) {
  // The daemon's own non-streamed answer to the same request is the reference.
  json req = {{"model", "kaizen"},
              {"messages", {{{"role", "user"}, {"content", "hello"}}}},
              {"temperature", 0},
              {"max_tokens", 8},
              {"chat_template_kwargs", {{"enable_thinking", false}}}};
  HttpResponse ref = api("POST", "/v1/chat/completions", req);
  ASSERT_EQ(ref.status, 200) << ref.body;
  const std::string want = ref.json()["choices"][0]["message"]["content"].get<std::string>();

  CtlResult r = ctl({"chat", "--temperature", "0", "--max-tokens", "8"}, "hello\n");
  EXPECT_CTL(r, 0);
  EXPECT_EQ(r.out, want.empty() ? "" : want + "\n");

  // --json: one object per answer. The second turn carries the first in its prompt;
  // after /reset the prompt is the first one again.
  r = ctl({"chat", "--json", "--temperature", "0", "--max-tokens", "4"},
          "hello\nand then?\n/reset\nhello\n");
  EXPECT_CTL(r, 0);
  std::vector<json> turns;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    turns.push_back(json::parse(line, nullptr, false));
  ASSERT_EQ(turns.size(), 3u) << r.out;
  for (const auto& t : turns) ASSERT_TRUE(t.is_object() && t["usage"].is_object()) << r.out;
  const int64_t p1 = turns[0]["usage"]["prompt_tokens"],
                c1 = turns[0]["usage"]["completion_tokens"];
  EXPECT_GT(turns[1]["usage"]["prompt_tokens"].get<int64_t>(), p1 + c1);
  EXPECT_EQ(turns[2]["usage"]["prompt_tokens"].get<int64_t>(), p1);
  EXPECT_EQ(turns[2]["content"], turns[0]["content"]);
  EXPECT_FALSE(turns[0]["id"].get<std::string>().empty());

  // Unknown adapter version: 404 -> exit 3.
  r = ctl({"chat", "--model-name", "kaizen@v9"}, "hello\n");
  EXPECT_CTL(r, 3);
  EXPECT_NE(r.err.find("kaizen@v9"), std::string::npos) << r.err;
}

TEST_F(KaizenctlOnline, ReviewListApproveReject) {
  // A thumbs-up on an answer queues the conversation for review.
  HttpResponse c = api("POST", "/v1/chat/completions",
                       {{"model", "kaizen"},
                        {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                        {"max_tokens", 3}});
  ASSERT_EQ(c.status, 200) << c.body;
  HttpResponse fb = api("POST", "/v1/feedback", {{"message_id", c.json()["id"]}, {"rating", 1}});
  ASSERT_EQ(fb.status, 200) << fb.body;

  CtlResult r = ctl({"review", "list", "--json"});
  EXPECT_CTL(r, 0);
  json j = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  ASSERT_EQ(j["pending"].size(), 1u) << r.out;
  const std::string id = std::to_string(j["pending"][0]["id"].get<uint64_t>());

  r = ctl({"review", "list"});
  EXPECT_CTL(r, 0);
  EXPECT_NE(r.out.find("1 waiting"), std::string::npos) << r.out;

  r = ctl({"review", "approve", id});
  EXPECT_CTL(r, 0);
  EXPECT_NE(r.out.find("approved"), std::string::npos) << r.out;
  r = ctl({"review", "list"});
  EXPECT_CTL(r, 0);
  EXPECT_NE(r.out.find("nothing waiting"), std::string::npos) << r.out;
  EXPECT_CTL(ctl({"review", "reject", "999999"}), 3);

  // The approved example is exported.
  r = ctl({"feedback", "export", "--json"});
  EXPECT_CTL(r, 0);
  EXPECT_NE(r.out.find("\"id\":" + id), std::string::npos) << r.out;
}

TEST_F(KaizenctlOnline, OnlineBackupRunsAndUnreachableDaemon) {
  // `db backup` without --state-dir asks the running daemon.
  CtlResult r = ctl({"db", "backup", "--dir", (state_.path() / "bk").string()});
  EXPECT_CTL(r, 0);
  EXPECT_TRUE(fs::exists(state_.path() / "bk")) << r.out;
  r = ctl({"db", "backup", "--dir", (state_.path() / "bk").string(), "--json"});
  EXPECT_CTL(r, 0);
  EXPECT_EQ(json::parse(r.out)["id"], 2) << r.out;  // incremental: the second backup

  r = ctl({"runs", "list"});
  EXPECT_CTL(r, 0);
  EXPECT_NE(r.out.find("no training runs yet"), std::string::npos) << r.out;
  r = ctl({"runs", "list", "--json"});
  EXPECT_CTL(r, 0);
  EXPECT_EQ(json::parse(r.out)["runs"].size(), 0u) << r.out;
  EXPECT_CTL(ctl({"runs", "show", "7"}), 3);

  // Nobody listening: exit 4 and the hint, for every online command.
  const std::string dead = (state_.path() / "nobody.sock").string();
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"status"}, {"adapters", "list"}, {"review", "list"}, {"chat"}, {"db", "backup"}}) {
    args.push_back("--socket");
    args.push_back(dead);
    r = ctl(args, "hello\n", false);
    EXPECT_CTL(r, 4);
    EXPECT_NE(r.err.find("kaizend is not running at " + dead), std::string::npos) << r.err;
  }
  // $KAIZEN_SOCKET is used when there is no --socket; --socket wins over it.
  r = ctl({"status"}, "", false, dead.c_str());
  EXPECT_CTL(r, 4);
  EXPECT_NE(r.err.find(dead), std::string::npos) << r.err;
  EXPECT_CTL(ctl({"status"}, "", false, config_.socket.c_str()), 0);
  EXPECT_CTL(ctl({"status"}, "", true, dead.c_str()), 0);
}

TEST_F(KaizenctlOnline, GlobalOptionsGoBeforeOrAfterTheCommand) {
  // As with git or systemctl: `kaizenctl --socket P status` = `kaizenctl status --socket P`.
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"--socket", config_.socket, "status"},
           {"--socket=" + config_.socket, "status"},
           {"--json", "--socket", config_.socket, "status"},
           {"--socket", config_.socket, "--timeout", "30", "status", "--json"}}) {
    CtlResult r = ctl(args, "", false);
    EXPECT_CTL(r, 0);
    EXPECT_NE(r.out.find("active_adapter"), std::string::npos) << r.out;
  }
  CtlResult j = ctl({"--json", "--socket", config_.socket, "status"}, "", false);
  EXPECT_TRUE(json::parse(j.out, nullptr, false).is_object()) << j.out;  // --json before the command too
  // A leading option kaizenctl does not know, or one without its value, is a usage error.
  CtlResult bad = ctl({"--sokcet", config_.socket, "status"}, "", false);
  EXPECT_CTL(bad, 2);
  EXPECT_NE(bad.err.find("unknown option --sokcet before the command"), std::string::npos) << bad.err;
  bad = ctl({"--socket"}, "", false);
  EXPECT_CTL(bad, 2);
  EXPECT_NE(bad.err.find("--socket needs a value"), std::string::npos) << bad.err;
  // An offline command given --socket says so instead of ignoring it.
  bad = ctl({"--socket", config_.socket, "model", "info", "--model", config_.model}, "", false);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("socket"), std::string::npos) << bad.err;
}

TEST_F(KaizenctlOnline, ARejectedRunNamesTheFailedCheckItsMarginAndKey) {
  // A gate no candidate passes, deterministically: a canary KL limit no adapter meets.
  stop_real_server(&service_, &server_, &runner_);
  config_.gate.canary_max_kl = 1e-9;  // overrides the default on purpose: every candidate fails it
  config_.train.epochs = 2;           // the verdict, not the learning, is under test
  ASSERT_EQ(start_real_server(config_, &service_, &server_, &runner_), "");
  const std::string facts = (state_.path() / "f.jsonl").string();
  std::ofstream(facts) << R"({"messages":[{"role":"user","content":"CHOREI?"},{"role":"assistant","content":"A meeting."}]})"
                       << "\n";
  EXPECT_CTL(ctl({"knowledge", "import", facts}), 0);
  EXPECT_CTL(ctl({"train", "now"}), 0);
  json last;
  for (int i = 0; i < 3000; ++i) {  // the learner thread finishes the run; poll its state (<= ~5 min)
    last = json::parse(ctl({"train", "status", "--json"}).out, nullptr, false).value("last", json());
    if (last.is_object() && last.value("state", "") == "rejected") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(last.value("state", ""), "rejected") << last.dump();
  EXPECT_NE(last.value("verdict", "").find("canary KL"), std::string::npos) << last.dump();
  EXPECT_NE(last.value("verdict", "").find("(gate.canary_max_kl)"), std::string::npos) << last.dump();
  bool found = false;
  for (const auto& c : last["gate"]["checks"]) {
    if (c["check"] != "canary_kl") continue;
    found = true;
    EXPECT_FALSE(c["pass"].get<bool>());
    EXPECT_GT(c["value"].get<double>(), c["threshold"].get<double>());
    EXPECT_EQ(c["key"], "gate.canary_max_kl");
  }
  EXPECT_TRUE(found) << last.dump();
  // The human forms: train status and runs show print the check table with the key.
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"train", "status"}, {"runs", "show", std::to_string(last["id"].get<uint64_t>())}}) {
    CtlResult r = ctl(args);
    EXPECT_CTL(r, 0);
    EXPECT_NE(r.out.find("gate: REJECTED"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("canary_kl"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("FAIL"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("gate.canary_max_kl"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace kaizen::daemon
