// Status, key encoding, SHA-256 and record serialization (round trips and bad bytes).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "storage/keys.h"
#include "storage/records.h"
#include "storage/sha256.h"
#include "storage/status.h"

namespace kaizen::storage {
namespace {

TEST(StatusTest, FactoriesPredicatesAndMessage) {
  EXPECT_TRUE(Status::OK().ok());
  EXPECT_EQ(Status::OK().ToString(), "OK");
  Status s = Status::Corruption("messages/m#1#2: bad");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_FALSE(s.IsNotFound());
  EXPECT_EQ(s.ToString(), "Corruption: messages/m#1#2: bad");
  EXPECT_TRUE(Status::Busy("x").IsBusy());
  EXPECT_TRUE(Status::NotFound("x").IsNotFound());
  EXPECT_TRUE(Status::IOError("x").IsIOError());
  EXPECT_TRUE(Status::InvalidArgument("x").IsInvalidArgument());
  EXPECT_TRUE(Status::NotSupported("x").IsNotSupported());
  EXPECT_TRUE(Status::AlreadyExists("x").IsAlreadyExists());
  EXPECT_TRUE(Status::Aborted("x").IsAborted());
  EXPECT_EQ(Status::NotFound("b").WithContext("a").message(), "a: b");
}

TEST(StatusTest, ResultHoldsValueOrError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = Status::NotFound("nope");
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsNotFound());
}

TEST(KeysTest, BigEndianKeysSortNumerically) {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> ids = {0, 1, 255, 256, 65535, 65536, UINT64_MAX, 1ull << 40};
  for (int i = 0; i < 200; ++i) ids.push_back(rng());
  std::vector<std::string> encoded;
  for (uint64_t id : ids) encoded.push_back(keys::example(id));
  std::sort(ids.begin(), ids.end());
  std::sort(encoded.begin(), encoded.end());  // bytewise, like RocksDB's comparator
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(*keys::get_u64(encoded[i], 1), ids[i]);
  }
  EXPECT_EQ(keys::u64(0x0102030405060708ull), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_FALSE(keys::get_u64("short").has_value());
  // Composite keys order by the first number, then the second.
  EXPECT_LT(keys::message(1, 999), keys::message(2, 1));
  EXPECT_LT(keys::message(2, 1), keys::message(2, 2));
}

TEST(Sha256Test, KnownVectors) {
  // FIPS 180-2 examples; the 56-byte one crosses the padding block boundary.
  EXPECT_EQ(to_hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(to_hex(sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(RecordsTest, ConversationAndMessageRoundTrip) {
  Conversation c{5, 1700000000000, "alice", "hello", "kaizen@v3"};
  Conversation c2;
  ASSERT_TRUE(decode(encode(c), "conversations/#5", &c2).ok());
  EXPECT_EQ(c2.id, 5u);
  EXPECT_EQ(c2.user, "alice");
  EXPECT_EQ(c2.model, "kaizen@v3");

  Message m;
  m.id = 9;
  m.conversation_id = 5;
  m.role = "assistant";
  m.content = "CHOREI là tên một công ty";  // UTF-8 survives
  m.prompt_tokens = 120;
  m.completion_tokens = 33;
  m.adapter_version = 7;
  m.latency_ms = 812;
  Message m2;
  ASSERT_TRUE(decode(encode(m), "w", &m2).ok());
  EXPECT_EQ(m2.content, m.content);
  EXPECT_EQ(m2.prompt_tokens, 120u);
  EXPECT_EQ(m2.completion_tokens, 33u);
  EXPECT_EQ(m2.adapter_version, 7u);
  EXPECT_EQ(m2.latency_ms, 812u);
}

TEST(RecordsTest, FeedbackExampleAdapterRunRoundTrip) {
  Feedback f{3, 9, -1, "It means X", "bob", 42, ReviewState::kAccepted, 11};
  Feedback f2;
  ASSERT_TRUE(decode(encode(f), "w", &f2).ok());
  EXPECT_EQ(f2.rating, -1);
  EXPECT_EQ(f2.review, ReviewState::kAccepted);
  EXPECT_EQ(f2.example_id, 11u);

  Example e;
  e.id = 11;
  e.messages = {{"system", "s"}, {"user", "q"}, {"assistant", "a"}};
  e.source = ExampleSource::kCorrection;
  e.state = ExampleState::kTrained;
  e.first_adapter_version = 4;
  e.provenance = "feedback:3 by bob";
  Example e2;
  ASSERT_TRUE(decode(encode(e), "w", &e2).ok());
  ASSERT_EQ(e2.messages.size(), 3u);
  EXPECT_EQ(e2.messages[1].content, "q");
  EXPECT_EQ(e2.source, ExampleSource::kCorrection);
  EXPECT_EQ(e2.state, ExampleState::kTrained);
  EXPECT_EQ(e2.first_adapter_version, 4u);

  Adapter a;
  a.version = 7;
  a.parent = 6;
  a.path = "adapters/v000007";
  a.metrics = {{"learn_acc", 0.97}, {"canary_kl", 0.01}};
  a.state = AdapterState::kRetired;
  a.pinned = true;
  Adapter a2;
  ASSERT_TRUE(decode(encode(a), "w", &a2).ok());
  EXPECT_EQ(a2.metrics.at("learn_acc"), 0.97);
  EXPECT_TRUE(a2.pinned);
  EXPECT_EQ(a2.state, AdapterState::kRetired);

  storage::Run r;
  r.id = 2;
  r.trigger = "manual";
  r.example_ids = {1, 2, 3};
  r.replay_ids = {9};
  r.config = {{"lr", 1e-4}, {"steps", 50}};
  r.loss_curve = {2.5f, 1.25f};
  r.state = RunState::kInterrupted;
  r.phase_seconds = {{"train", 12.5}};
  storage::Run r2;
  ASSERT_TRUE(decode(encode(r), "w", &r2).ok());
  EXPECT_EQ(r2.example_ids, r.example_ids);
  EXPECT_EQ(r2.config["steps"], 50);
  EXPECT_EQ(r2.loss_curve, r.loss_curve);
  EXPECT_EQ(r2.state, RunState::kInterrupted);
  EXPECT_EQ(r2.phase_seconds.at("train"), 12.5);
}

TEST(RecordsTest, CorruptBytesAreCorruptionNamingTheKey) {
  Message m;
  Status s = decode(std::string("\x00\xff garbage", 10), "messages/m#1#2", &m);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("messages/m#1#2"), std::string::npos) << s.ToString();
  // Valid JSON of the wrong shape.
  s = decode(R"({"v":1,"prompt_tokens":"many"})", "messages/m#1#3", &m);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("messages/m#1#3"), std::string::npos);
  // Missing version field.
  s = decode(R"({"id":1})", "messages/m#1#4", &m);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  // Unknown enum value.
  Example e;
  s = decode(R"({"v":1,"state":"teleported"})", "examples/e#4", &e);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find("teleported"), std::string::npos);
}

TEST(RecordsTest, NewerRecordVersionIsNotSupported) {
  Adapter a;
  Status s = decode(R"({"v":99,"version":3})", "adapters/#3", &a);
  EXPECT_TRUE(s.IsNotSupported()) << s.ToString();
  EXPECT_NE(s.message().find("adapters/#3"), std::string::npos);
  EXPECT_NE(s.message().find("99"), std::string::npos);
}

TEST(RecordsTest, OldRecordsWithoutNewFieldsReadWithDefaults) {
  Message m;
  ASSERT_TRUE(decode(R"({"v":1,"id":4,"role":"user","content":"hi"})", "w", &m).ok());
  EXPECT_EQ(m.id, 4u);
  EXPECT_EQ(m.latency_ms, 0u);
  EXPECT_EQ(m.adapter_version, 0u);
}

TEST(RecordsTest, InvalidUtf8IsStoredNotRejected) {
  Message m;
  m.role = "user";
  m.content = std::string("ok \xff\xfe end");
  Message m2;
  ASSERT_TRUE(decode(encode(m), "w", &m2).ok());
  EXPECT_EQ(m2.content.substr(0, 3), "ok ");
}

TEST(RecordsTest, ContentHashIsCanonical) {
  std::vector<ChatMessage> a = {{"user", "ab"}, {"assistant", "c"}};
  std::vector<ChatMessage> b = {{"user", "a"}, {"assistant", "bc"}};
  EXPECT_EQ(content_hash(a), content_hash(a));
  EXPECT_NE(content_hash(a), content_hash(b));  // split point matters
  EXPECT_EQ(content_hash(a).size(), 32u);
  // Without tools the canonical form is the one stored before tools existed: the dedupe
  // keys of old databases still match.
  EXPECT_EQ(content_hash(a), sha256("4:user;2:ab;9:assistant;1:c;"));
  // Each tool field counts.
  std::vector<ChatMessage> call = {{"user", "q"}, {"assistant", ""}};
  call[1].tool_calls.push_back({"c1", "f", "{}"});
  const std::string h = content_hash(call);
  EXPECT_NE(h, content_hash({{"user", "q"}, {"assistant", ""}}));
  EXPECT_NE(h, content_hash(call, "[]"));
  auto other = call;
  other[1].tool_calls[0].arguments_is_object = true;
  EXPECT_NE(h, content_hash(other));
  other = call;
  other[1].tool_calls[0].name = "g";
  EXPECT_NE(h, content_hash(other));
}

TEST(RecordsTest, ToolFieldsRoundTripInMessagesExamplesAndConversations) {
  Message m;
  m.role = "assistant";
  m.content = "Let me look.";
  m.tool_calls.push_back({"call_0", "order_status", R"({"order_id": "A-17"})"});
  m.tool_calls.push_back({"call_1", "stock", R"({"sku":"X"})", /*arguments_is_object=*/true});
  Message m2;
  ASSERT_TRUE(decode(encode(m), "w", &m2).ok());
  ASSERT_EQ(m2.tool_calls.size(), 2u);
  EXPECT_EQ(m2.tool_calls[0].arguments, R"({"order_id": "A-17"})");
  EXPECT_FALSE(m2.tool_calls[0].arguments_is_object);
  EXPECT_TRUE(m2.tool_calls[1].arguments_is_object);
  EXPECT_EQ(m2.tool_calls[1].id, "call_1");
  Message result;
  result.role = "tool";
  result.tool_call_id = "call_0";
  ASSERT_TRUE(decode(encode(result), "w", &m2).ok());
  EXPECT_EQ(m2.tool_call_id, "call_0");
  EXPECT_TRUE(m2.tool_calls.empty());
  // Records without tools keep their old bytes: no tool keys at all.
  Message plain;
  plain.role = "user";
  EXPECT_EQ(encode(plain).find("tool"), std::string::npos);

  Conversation c;
  c.tools_json = R"([{"type":"function","function":{"name":"f"}}])";
  Conversation c2;
  ASSERT_TRUE(decode(encode(c), "w", &c2).ok());
  EXPECT_EQ(c2.tools_json, c.tools_json);

  Example e;
  e.messages = {{"user", "q"}, {"assistant", ""}};
  e.messages[1].tool_calls.push_back({"call_0", "f", R"({"z": 1, "a": 2})"});
  e.tools_json = R"([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])";
  Example e2;
  ASSERT_TRUE(decode(encode(e), "w", &e2).ok());
  EXPECT_EQ(e2.tools_json, e.tools_json);
  ASSERT_EQ(e2.messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(e2.messages[1].tool_calls[0].arguments, R"({"z": 1, "a": 2})");
  // The fine-tuning line: OpenAI's shape, tools in their key order.
  EXPECT_EQ(to_chat_record(e2),
            R"({"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"",)"
            R"("tool_calls":[{"id":"call_0","type":"function","function":{"name":"f","arguments":"{\"z\": 1, \"a\": 2}"}}]}],)"
            R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]})");
  // A bad tool call in a stored record is Corruption, not a crash.
  EXPECT_TRUE(decode(R"({"v":1,"role":"assistant","tool_calls":[{"id":"x"}]})", "messages/m#1#2", &m2).IsCorruption());
  EXPECT_TRUE(decode(R"({"v":1,"role":"assistant","tool_calls":{}})", "messages/m#1#2", &m2).IsCorruption());
}

}  // namespace
}  // namespace kaizen::storage
