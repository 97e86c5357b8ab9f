// The HTTP edge's decisions in isolation (no sockets): route matching, the Host
// allow-list, the bearer check, query parsing, typed admin arguments and the one mapping
// of domain failures to HTTP.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/errors.h"
#include "daemon/http/router.h"
#include "daemon/serve/params.h"
#include "daemon/service.h"

namespace kaizen::daemon {
namespace {

using nlohmann::json;
using Transport = PeerInfo::Transport;

TEST(MatchRoute, KnownRoutesTheirMethodsAndWhetherTheyNeedAToken) {
  RouteMatch m = match_route("POST", "/v1/chat/completions", Transport::kTcp);
  EXPECT_EQ(m.route, Route::kChat);
  EXPECT_TRUE(m.method_ok);
  EXPECT_TRUE(m.needs_token);
  EXPECT_TRUE(m.has_body);
  EXPECT_STREQ(m.name, "chat");

  m = match_route("GET", "/v1/chat/completions", Transport::kTcp);
  EXPECT_EQ(m.route, Route::kChat);
  EXPECT_FALSE(m.method_ok);
  EXPECT_STREQ(m.allow, "POST");

  m = match_route("GET", "/healthz", Transport::kTcp);
  EXPECT_EQ(m.route, Route::kHealth);
  EXPECT_FALSE(m.needs_token) << "load balancers probe without a key";
  EXPECT_EQ(match_route("GET", "/v1/models", Transport::kTcp).route, Route::kModels);
  EXPECT_EQ(match_route("POST", "/v1/feedback", Transport::kTcp).route, Route::kFeedback);
  EXPECT_EQ(match_route("GET", "/metrics", Transport::kTcp).route, Route::kMetrics);
  EXPECT_EQ(match_route("GET", "/v1/chat/completions/extra", Transport::kTcp).route, Route::kNotFound);
  EXPECT_EQ(match_route("GET", "/", Transport::kUnix).route, Route::kNotFound);
}

TEST(MatchRoute, AdminExistsOnlyOnTheUnixSocketAndKeepsOpAndQuery) {
  RouteMatch m = match_route("GET", "/admin/adapters/show?version=v3&x=1", Transport::kUnix);
  EXPECT_EQ(m.route, Route::kAdmin);
  EXPECT_EQ(m.admin_op, "adapters/show");
  EXPECT_EQ(m.query, "version=v3&x=1");
  EXPECT_TRUE(m.method_ok);
  EXPECT_EQ(match_route("POST", "/admin/train/now", Transport::kUnix).route, Route::kAdmin);
  EXPECT_FALSE(match_route("DELETE", "/admin/train/now", Transport::kUnix).method_ok);
  EXPECT_EQ(match_route("GET", "/admin/status", Transport::kTcp).route, Route::kNotFound);
  EXPECT_EQ(match_route("GET", "/admin/", Transport::kUnix).route, Route::kNotFound);
}

TEST(HostAllowed, MatchesNamesCaseInsensitivelyWithOptionalPorts) {
  const std::vector<std::string> allowed = {"localhost", "127.0.0.1:8088", "[::1]", "Chat.Example.com"};
  EXPECT_TRUE(host_allowed("localhost", allowed));
  EXPECT_TRUE(host_allowed("LOCALHOST:9999", allowed)) << "an entry without a port allows any port";
  EXPECT_TRUE(host_allowed("127.0.0.1:8088", allowed));
  EXPECT_FALSE(host_allowed("127.0.0.1:8089", allowed)) << "an entry with a port allows only it";
  EXPECT_FALSE(host_allowed("127.0.0.1", allowed));
  EXPECT_TRUE(host_allowed("[::1]:8088", allowed));
  EXPECT_TRUE(host_allowed("chat.example.COM", allowed));
  EXPECT_FALSE(host_allowed("evil.example.com", allowed)) << "DNS rebinding";
  EXPECT_FALSE(host_allowed("", allowed));
  EXPECT_FALSE(host_allowed("localhost", {}));
}

TEST(CheckBearer, AcceptsOnlyTheExactKeyAndSaysWhatIsWrong) {
  EXPECT_FALSE(check_bearer("Bearer s3cret", "s3cret").has_value());
  EXPECT_FALSE(check_bearer("bearer   s3cret", "s3cret").has_value()) << "scheme is case-insensitive";
  auto wrong = check_bearer("Bearer s3cre", "s3cret");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->http_status, 401);
  EXPECT_EQ(wrong->message, "incorrect API key");
  EXPECT_TRUE(check_bearer("Bearer s3cretX", "s3cret")) << "a longer key with the right prefix";
  auto missing = check_bearer("", "s3cret");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->http_status, 401);
  EXPECT_NE(missing->message.find("missing API key"), std::string::npos);
  EXPECT_TRUE(check_bearer("Basic czNjcmV0", "s3cret"));
  auto off = check_bearer("Bearer anything", "");
  ASSERT_TRUE(off);
  EXPECT_EQ(off->http_status, 403) << "no key configured: TCP chat is off, not open";
}

TEST(ParseQuery, DecodesPairsAndKeepsEmptyValues) {
  json q = parse_query("name=a%20b&n=2&flag&plus=x+y&bad=%zz");
  EXPECT_EQ(q["name"], "a b");
  EXPECT_EQ(q["n"], "2");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["plus"], "x y");
  EXPECT_EQ(q["bad"], "%zz");
  EXPECT_TRUE(parse_query("").empty());
}

TEST(Params, IdsVersionsPagesAndFlagsAreParsedByType) {
  EXPECT_EQ(*parse_id(json(42), "id"), 42u);
  EXPECT_EQ(*parse_id(json("42"), "id"), 42u);
  for (const json& bad : {json("v7"), json(0), json(-3), json("4x"), json(""), json(nullptr), json(1.5),
                          json("1234567890123456789")}) {
    auto r = parse_id(bad, "message_id");
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_EQ(r.error().param, "message_id");
  }
  EXPECT_EQ(*parse_version(json("v7"), "version"), 7u);
  EXPECT_EQ(*parse_version(json("V7"), "version"), 7u);
  EXPECT_EQ(*parse_version(json("7"), "version"), 7u);
  EXPECT_EQ(*parse_version(json(7), "version"), 7u);
  for (const json& bad : {json("v"), json("v0"), json(0), json("vv7"), json("base"), json(true)}) {
    EXPECT_FALSE(parse_version(bad, "version").ok()) << bad.dump();
  }

  auto page = parse_page(json::object());
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->cursor, 0u);
  EXPECT_EQ(page->limit, storage::PageRequest{}.limit);
  page = parse_page(json{{"cursor", "17"}, {"limit", 500}});  // query strings give text
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->cursor, 17u);
  EXPECT_EQ(page->limit, 500u);
  EXPECT_EQ(parse_page(json{{"cursor", "v3"}}).error().param, "cursor");
  EXPECT_EQ(parse_page(json{{"limit", 0}}).error().param, "limit");
  EXPECT_EQ(parse_page(json{{"limit", "many"}}).error().param, "limit");

  EXPECT_TRUE(*parse_flag(json{{"all", true}}, "all", false));
  EXPECT_TRUE(*parse_flag(json{{"all", "true"}}, "all", false));
  EXPECT_FALSE(*parse_flag(json{{"all", "0"}}, "all", true));
  EXPECT_TRUE(*parse_flag(json::object(), "all", true));
  EXPECT_FALSE(parse_flag(json{{"all", "yes"}}, "all", false).ok());
}

TEST(HttpError, EachDomainFailureHasOneStatus) {
  EXPECT_EQ(http_error(Failure::Invalid("x", "version")).http_status, 400);
  EXPECT_EQ(http_error(Failure::Invalid("x", "version")).param, "version");
  EXPECT_EQ(http_error(Failure::NothingToDo("x")).http_status, 400);
  EXPECT_EQ(http_error(Failure::NotFound("x")).http_status, 404);
  EXPECT_EQ(http_error(Failure::Conflict("x")).http_status, 409);
  Error unavailable = http_error(Failure::Unavailable("busy"));
  EXPECT_EQ(unavailable.http_status, 503);
  EXPECT_GT(unavailable.retry_after_s, 0);
  Error internal = http_error(Failure::Internal("bad record"));
  EXPECT_EQ(internal.http_status, 500);
  EXPECT_EQ(internal.message, "bad record");
  EXPECT_EQ(internal.type, "server_error");
  Error full = http_error(Failure::NoSpace("disk full"));
  EXPECT_EQ(full.http_status, 507);
  EXPECT_EQ(full.code, "insufficient_storage");
  EXPECT_EQ(full.retry_after_s, 30);
}

}  // namespace
}  // namespace kaizen::daemon
