// What every online command shares (online_commands.h): talking to /admin/<op>, the
// common flags and the common error handling. The groups live in their own files.
#include "daemon/ctl/online_commands.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <utility>

#include "daemon/ctl/command.h"

namespace kaizen::ctl {

using nlohmann::json;

int exit_code_for_http(int status) {
  if (status == 404) return kExitNotFound;
  if (status == 409 || status == 429 || status == 503) return kExitRejected;
  return kExitFailure;
}

DaemonClient client_from_flags(const Flags& f) {
  DaemonClientOptions o;
  o.socket_path = resolve_socket_path(f.get("socket"));
  const double timeout_s = f.get_double("timeout", 120);
  if (timeout_s < 0) throw FlagError("--timeout must be >= 0 seconds");
  o.read_timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  return DaemonClient(o);
}

json admin_answer(const HttpReply& r, const std::string& op, const std::string& what,
                  bool as_json) {
  if (r.status == 200) {
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded())
      throw DaemonProtocolError("kaizend answered /admin/" + op + " with non-JSON");
    return j;
  }
  if (as_json) {
    json j = json::parse(r.body, nullptr, false);
    std::cout << (j.is_discarded() ? json{{"error", {{"message", r.error_message()}}}} : j).dump(2)
              << "\n";
  }
  std::string message = r.error_message();
  if (r.status == 404 && message.rfind("unknown admin operation", 0) == 0) {
    message += " (this kaizend is older than kaizenctl?)";
  }
  std::fprintf(stderr, "kaizenctl %s: %s (HTTP %d)\n", what.c_str(), message.c_str(), r.status);
  throw CommandExit{exit_code_for_http(r.status)};
}

json call_admin(DaemonClient& client, const std::string& op, const json& args,
                const std::string& what, bool as_json) {
  return admin_answer(client.request("POST", "/admin/" + op,
                                     args.dump(-1, ' ', false, json::error_handler_t::replace)),
                      op, what, as_json);
}

json collect_pages(DaemonClient& client, const std::string& op, const std::string& items_key,
                   const std::string& what, bool as_json, json* first_page) {
  json all = json::array();
  uint64_t cursor = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    json page = call_admin(client, op, {{"cursor", cursor}, {"limit", 500}}, what, as_json);
    if (first_page && guard == 0) *first_page = page;
    if (page.contains(items_key) && page[items_key].is_array()) {
      for (auto& e : page[items_key]) all.push_back(std::move(e));
    }
    const json next = page.value("next_cursor", json(0));
    const uint64_t n = next.is_number_unsigned() ? next.get<uint64_t>() : 0;
    if (n == 0 || n == cursor) break;
    cursor = n;
  }
  return all;
}

int run_online(const std::string& what, const std::string& usage,
               const std::vector<std::string>& args,
               const std::function<int(const std::vector<std::string>&)>& body) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(usage.c_str(), stdout);
      return kExitOk;
    }
  }
  try {
    return body(args);
  } catch (const FlagError& e) {
    std::fprintf(stderr, "kaizenctl %s: %s\n\n%s", what.c_str(), e.what(), usage.c_str());
    return kExitUsage;
  } catch (const DaemonUnreachable& e) {
    std::fprintf(
        stderr,
        "kaizenctl %s: kaizend is not running at %s (is the service started? --socket?)\n  %s\n",
        what.c_str(), e.socket_path.c_str(), e.what());
    return kExitUnavailable;
  } catch (const DaemonProtocolError& e) {
    std::fprintf(stderr, "kaizenctl %s: %s\n", what.c_str(), e.what());
    return kExitFailure;
  } catch (const CommandExit& e) {
    return e.code;
  }
}

Flags parse_online_flags(const std::vector<std::string>& args, std::set<std::string> value_flags,
                         std::set<std::string> bool_flags) {
  static const std::set<std::string> kCommonFlags = {"socket", "timeout"};
  value_flags.insert(kCommonFlags.begin(), kCommonFlags.end());
  return Flags(args, std::move(value_flags), std::move(bool_flags));
}

void want_positional(const Flags& f, size_t min, size_t max) {
  const auto& p = f.positional();
  if (p.size() < min) throw FlagError("missing argument");
  if (p.size() > max) throw FlagError("unexpected argument '" + p[max] + "'");
}

void print_json(const json& j) {
  std::cout << j.dump(2) << "\n";
}

}  // namespace kaizen::ctl
