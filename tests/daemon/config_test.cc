#include "daemon/config.h"
#include "daemon/config_keys.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace kaizen::daemon {
namespace {

std::string temp_file(const std::string& text) {
  char path[] = "/tmp/kaizen-conf-XXXXXX";
  int fd = ::mkstemp(path);
  ::close(fd);
  std::ofstream(path) << text;
  return path;
}

ConfigSource source(const std::string& path, std::vector<std::string> flags = {}) {
  ConfigSource s;
  s.path = path;
  s.path_given = true;
  s.flags = std::move(flags);
  return s;
}

std::string all(const std::vector<std::string>& errors) {
  std::string s;
  for (const auto& e : errors) s += e + "\n";
  return s;
}

TEST(ConfigTest, DefaultsMatchDesign) {
  Config c;
  ConfigSource s;
  s.path = "/nonexistent/kaizend.conf";  // default path missing is fine
  auto errors = load_config(s, &c);
  EXPECT_TRUE(errors.empty()) << all(errors);
  EXPECT_EQ(c.state_dir, "/var/lib/kaizen");
  EXPECT_EQ(c.socket, "/run/kaizen/kaizend.sock");
  EXPECT_EQ(c.listen, "127.0.0.1:8088");
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8088);
  EXPECT_EQ(c.socket_mode_bits, 0660u);
  EXPECT_EQ(c.io_threads, 2);
  EXPECT_EQ(c.limits.max_body_bytes, 1 << 20);
  EXPECT_TRUE(c.bearer_token.empty());
}

TEST(ConfigTest, FileThenFlagsPrecedence) {
  std::string key = temp_file("  s3cret-token \n");
  std::string path = temp_file(
      "listen = 127.0.0.1:9000\nio_threads = 3\napi_key_file = " + key +
      "\nallowed_hosts = localhost, chat.example.com:8443\n"
      "[limits]\nmax_body_bytes = 2MiB\nmax_tokens = 512\n");
  Config c;
  auto errors = load_config(
      source(path, {"--io_threads=4", "--limits.max_tokens=256", "--socket="}), &c);
  ASSERT_TRUE(errors.empty()) << all(errors);
  EXPECT_EQ(c.listen_port, 9000);                    // file
  EXPECT_EQ(c.io_threads, 4);                        // flag beats file
  EXPECT_EQ(c.limits.max_tokens, 256);               // flag beats file, dotted key
  EXPECT_EQ(c.limits.max_body_bytes, 2 << 20);       // size suffix
  EXPECT_EQ(c.bearer_token, "s3cret-token");         // trimmed file contents
  EXPECT_EQ(c.allowed_hosts, (std::vector<std::string>{"localhost", "chat.example.com:8443"}));
  EXPECT_EQ(c.limits.max_header_bytes, 16 * 1024);   // default kept
  EXPECT_EQ(c.socket, "");                           // empty flag value = off
}

TEST(ConfigTest, LearningPolicyAndWeightKeys) {
  std::string path = temp_file("mmap_weights = true\n[train]\ntrusted_authors = hr-bot, ops\nmax_per_author = 20\n"
                               "[gate]\nparaphrase_min = 0.8\n");
  Config c;
  ASSERT_FALSE(c.mmap_weights);  // default: the huge-page copy
  auto errors = load_config(source(path, {}), &c);
  ASSERT_TRUE(errors.empty()) << all(errors);
  EXPECT_TRUE(c.mmap_weights);
  EXPECT_EQ(c.train.trusted_authors, (std::vector<std::string>{"hr-bot", "ops"}));
  EXPECT_EQ(c.train.max_per_author, 20);
  EXPECT_DOUBLE_EQ(c.gate.paraphrase_min, 0.8);
  Config bad;
  std::string text = all(load_config(
      source(path, {"--mmap_weights=maybe", "--train.max_per_author=-2", "--gate.paraphrase_min=2"}), &bad));
  EXPECT_NE(text.find("mmap_weights: 'maybe'"), std::string::npos) << text;
  EXPECT_NE(text.find("train.max_per_author: '-2' is out of range"), std::string::npos) << text;
  EXPECT_NE(text.find("gate.paraphrase_min: '2' is out of range"), std::string::npos) << text;
}

TEST(ConfigTest, EngineKeys) {
  Config defaults;
  EXPECT_EQ(defaults.decode_batch, 8);
  EXPECT_EQ(defaults.prefill_chunk, 128);
  EXPECT_EQ(defaults.conversation_cache_mb, 2048);
  EXPECT_EQ(defaults.limits.max_active_chats, 8);  // a full batch by default
  Config c;
  auto errors = load_config(
      source(temp_file("decode_batch = 4\nprefill_chunk = 0\n"),
             {"--limits.max_active_chats=16", "--conversation_cache_mb=0"}),
      &c);
  ASSERT_TRUE(errors.empty()) << all(errors);
  EXPECT_EQ(c.decode_batch, 4);
  EXPECT_EQ(c.prefill_chunk, 0);  // whole prompts
  EXPECT_EQ(c.conversation_cache_mb, 0);  // off
  EXPECT_EQ(c.limits.max_active_chats, 16);
  Config bad;
  std::string text = all(load_config(
      source(temp_file("decode_batch = 0\nprefill_chunk = -5\nconversation_cache_mb = lots\n")), &bad));
  EXPECT_NE(text.find("decode_batch: '0' is out of range"), std::string::npos) << text;
  EXPECT_NE(text.find("prefill_chunk: '-5' is out of range"), std::string::npos) << text;
  EXPECT_NE(text.find("conversation_cache_mb"), std::string::npos) << text;
}

TEST(ConfigTest, EveryBadKeyIsReportedByName) {
  std::string path = temp_file(
      "bogus_key = 1\nio_threads = many\nlisten = localhost\nsocket_mode = 999\n"
      "api_key_file = /nonexistent/key\n[limits]\nmax_body_bytes = 10XB\nmax_tokens = 0\n"
      "[train]\nunknown = 2\n");
  Config c;
  auto errors = load_config(source(path, {"--no_such_flag=3", "--threads=-1"}), &c);
  std::string text = all(errors);
  EXPECT_NE(text.find("unknown key 'bogus_key'"), std::string::npos) << text;
  EXPECT_NE(text.find("unknown key 'train.unknown'"), std::string::npos) << text;
  EXPECT_NE(text.find("io_threads: 'many' is not an integer"), std::string::npos) << text;
  EXPECT_NE(text.find("listen: 'localhost' is not host:port"), std::string::npos) << text;
  EXPECT_NE(text.find("socket_mode: '999' is not an octal mode"), std::string::npos) << text;
  EXPECT_NE(text.find("api_key_file: '/nonexistent/key' does not exist"), std::string::npos)
      << text;
  EXPECT_NE(text.find("limits.max_body_bytes: '10XB' is not an integer"), std::string::npos)
      << text;
  EXPECT_NE(text.find("limits.max_tokens: '0' is out of range"), std::string::npos) << text;
  EXPECT_NE(text.find("unknown key 'no_such_flag'"), std::string::npos) << text;
  EXPECT_NE(text.find("threads: '-1' is out of range"), std::string::npos) << text;
  EXPECT_EQ(errors.size(), 10u) << text;
}

TEST(ConfigTest, MissingExplicitConfigFileIsAnError) {
  Config c;
  auto errors = load_config(source("/nonexistent/kaizend.conf"), &c);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("cannot be read"), std::string::npos);
}

TEST(ConfigTest, SyntaxErrorInFileIsReported) {
  std::string path = temp_file("listen 127.0.0.1:1\n");
  Config c;
  auto errors = load_config(source(path), &c);
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(all(errors).find(path), std::string::npos);
}

TEST(ConfigTest, HostPortForms) {
  std::string h;
  uint16_t p = 0;
  EXPECT_EQ(parse_host_port("[::1]:8088", &h, &p), "");
  EXPECT_EQ(h, "::1");
  EXPECT_EQ(p, 8088);
  EXPECT_EQ(parse_host_port("localhost:0", &h, &p), "");
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(parse_host_port("*:80", &h, &p), "");
  EXPECT_EQ(h, "0.0.0.0");
  EXPECT_NE(parse_host_port("127.0.0.1:70000", &h, &p), "");
  EXPECT_NE(parse_host_port("example.com:80", &h, &p), "");
  EXPECT_NE(parse_host_port("::1:80", &h, &p), "");
}

TEST(ConfigTest, CommandLineSplitsControlFlags) {
  const char* argv[] = {"kaizend", "--config", "/x.conf", "--check-config", "--listen",
                        "127.0.0.1:1", "--socket=/tmp/s", "stray"};
  CommandLine cl = parse_command_line(8, argv);
  EXPECT_EQ(cl.source.path, "/x.conf");
  EXPECT_TRUE(cl.source.path_given);
  EXPECT_TRUE(cl.check_config);
  EXPECT_EQ(cl.source.flags, (std::vector<std::string>{"--listen=127.0.0.1:1", "--socket=/tmp/s"}));
  ASSERT_EQ(cl.errors.size(), 1u);
  EXPECT_NE(cl.errors[0].find("stray"), std::string::npos);
}

TEST(ConfigTest, DescribeMasksSecretsAndRoundTrips) {
  Config c;
  ConfigSource s;
  s.path = "/nonexistent";
  s.flags = {"--api_key=topsecret", "--limits.max_tokens=77"};
  ASSERT_TRUE(load_config(s, &c).empty());
  std::string text = describe_config(c);
  EXPECT_EQ(text.find("topsecret"), std::string::npos) << text;
  EXPECT_NE(text.find("api_key = (set, 9 chars)"), std::string::npos) << text;
  // The printed INI (minus the secret) loads back to the same values.
  std::string reparsed;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("api_key =", 0) != 0) reparsed += line + "\n";
  Config c2;
  auto errors = load_config(source(temp_file(reparsed)), &c2);
  EXPECT_TRUE(errors.empty()) << all(errors);
  EXPECT_EQ(c2.limits.max_tokens, 77);
  EXPECT_EQ(c2.allowed_hosts, c.allowed_hosts);
}

// Secrecy is declared on the key (config_keys.cc), not by its position in the table: the
// API key is the one secret, and every other key prints its value.
TEST(ConfigKeys, SecrecyIsDeclaredOnTheKeyItself) {
  const Key* api_key = find_key("api_key");
  ASSERT_NE(api_key, nullptr);
  EXPECT_TRUE(api_key->secret);
  for (const Key& k : keys()) {
    if (k.name != "api_key") {
      EXPECT_FALSE(k.secret) << k.name;
    }
  }
  EXPECT_EQ(find_key("no_such_key"), nullptr);
}

}  // namespace
}  // namespace kaizen::daemon
