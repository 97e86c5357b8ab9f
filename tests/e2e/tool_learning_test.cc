// The learning loop teaches the company's own functions (issue 15 "Proof"): 50 function-
// calling examples in OpenAI's fine-tuning format (examples/sabitech_tool_calls.jsonl)
// imported into a kaizend with the default settings start a run by themselves
// (train.min_new_examples = 50); the published LoRA makes the random demo model, which
// before called nothing sensible, call the right function, mostly with the right
// arguments, for those questions through the API, with tool_choice left at "auto".
#include <fstream>

#include "learning_server.h"

namespace kaizen::daemon::testing {
namespace {

using nlohmann::json;

struct ToolExample {
  std::string question;
  // Key order kept: the template prints the tools as the client sent them, so a client
  // that reorders keys (nlohmann::json sorts them) shows the model another system prompt
  // than the one it was trained with.
  nlohmann::ordered_json tools;
  std::string name;
  json arguments;
};

std::vector<ToolExample> load_examples(std::vector<std::string>* lines) {
  std::ifstream in(kaizen::testing::source_dir() + "/examples/sabitech_tool_calls.jsonl");
  std::vector<ToolExample> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    lines->push_back(line);
    json j = json::parse(line);
    const json& call = j["messages"][1]["tool_calls"][0]["function"];
    out.push_back({j["messages"][0]["content"], nlohmann::ordered_json::parse(line)["tools"],
                   call["name"], json::parse(call["arguments"].get<std::string>())});
  }
  return out;
}

class ToolLearning : public LearningServer {
 protected:
  // The defaults, all of them: the recipe, the gate, and the automatic trigger.
  void configure(Config&) override {}

  // How many of the questions get exactly their call (name and parsed arguments); `names`
  // counts those that call the right function whatever the arguments.
  int right_calls(const std::vector<ToolExample>& examples, const std::string& model,
                  std::string* first_wrong, int* names = nullptr) {
    int right = 0;
    if (names) *names = 0;
    for (const auto& e : examples) {
      nlohmann::ordered_json body = nlohmann::ordered_json::parse(ask(e.question, model).dump());
      body["tools"] = e.tools;
      body["max_tokens"] = 64;
      HttpResponse r = chat(body);
      EXPECT_EQ(r.status, 200) << r.body;
      if (r.status != 200) continue;
      const json msg = r.json()["choices"][0]["message"];
      const json calls = msg.value("tool_calls", json::array());
      if (names && calls.size() == 1 && calls[0]["function"]["name"] == e.name) ++*names;
      const bool ok = calls.size() == 1 && calls[0]["function"]["name"] == e.name &&
                      json::parse(calls[0]["function"]["arguments"].get<std::string>(), nullptr, false) == e.arguments &&
                      r.json()["choices"][0]["finish_reason"] == "tool_calls";
      if (ok) {
        ++right;
      } else if (first_wrong->empty()) {
        *first_wrong = e.question + " -> " + msg.dump();
      }
    }
    return right;
  }

  // Waits for the run the import started (train/status: idle with a last run).
  json wait_for_automatic_run(double timeout_s = 600) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_s) {
      HttpResponse s = admin("train/status");
      if (s.status == 200 && s.json()["state"] == "idle" && s.json()["last"].is_object()) {
        return admin("runs/show", {{"id", s.json()["last"]["id"]}}).json();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    ADD_FAILURE() << "no run finished in " << timeout_s << " s";
    return nullptr;
  }
};

TEST_F(ToolLearning, DISABLED_FiftyToolCallExamplesTeachTheDemoModelTheCompanysFunctions) {
  std::vector<std::string> lines;
  const std::vector<ToolExample> examples = load_examples(&lines);
  ASSERT_EQ(examples.size(), 50u);
  std::string wrong;
  const int before = right_calls(examples, "base", &wrong);
  std::printf("base model: %d/50 right calls (first wrong: %s)\n", before, wrong.c_str());
  EXPECT_LE(before, 2);

  json imported = import(lines, "sabitech_tool_calls.jsonl");
  ASSERT_EQ(imported["imported"], 50) << imported.dump();
  ASSERT_TRUE(imported["errors"].empty()) << imported.dump();
  json run = wait_for_automatic_run();
  ASSERT_TRUE(run.is_object());
  std::printf("run: %s %s\nphases: %s\n", run["state"].get<std::string>().c_str(), run["metrics"].dump().c_str(),
              run["phase_seconds"].dump().c_str());
  ASSERT_EQ(run["state"], "published") << run.dump(1);
  EXPECT_EQ(run["trigger"], "min_new_examples");

  wrong.clear();
  int names = 0;
  const int after = right_calls(examples, "kaizen", &wrong, &names);
  std::printf("with the adapter: %d/50 right calls, %d/50 the right function (first wrong: %s)\n",
              after, names, wrong.c_str());
  // Measured with the defaults (60 epochs, 145 s): 34/50 exact calls; the misses are
  // arguments copied from the question with a wrong digit (SB-4898 -> SB-4839), while the
  // function is right. train.epochs = 120 (271 s) gives 46/50 calls, 49/50 functions
  // (README "Teaching it the company's functions").
  EXPECT_GE(names, 45) << wrong;  // measured 50/50
  EXPECT_GE(after, 30) << wrong;
}

}  // namespace
}  // namespace kaizen::daemon::testing
