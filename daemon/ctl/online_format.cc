// Human-readable output of the online commands (online_format.h).
#include "daemon/ctl/online_format.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>

namespace kaizen::ctl {

using nlohmann::json;

std::string when(const json& ms) {
  if (!ms.is_number() || ms.get<int64_t>() <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms.get<int64_t>() / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::string scalar(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  if (v.is_number_float()) {
    std::ostringstream o;
    o.precision(4);
    o << v.get<double>();
    return o.str();
  }
  return v.dump();
}

std::string version_name(const json& v) {
  if (!v.is_number() || v.get<int64_t>() <= 0) return "base";
  return "v" + std::to_string(v.get<int64_t>());
}

std::string clip(std::string s, size_t n) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() <= n) return s;
  size_t cut = n - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

namespace {

// Display width: UTF-8 code points.
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

void Table::print() const {
  std::vector<size_t> w(rows_[0].size(), 0);
  for (const auto& r : rows_) {
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) {
      w[i] = std::max(w[i], display_width(r[i]));
    }
  }
  for (const auto& r : rows_) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - display_width(r[i]) + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

void print_fields(const json& j, const std::string& prefix) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_object() && !it.value().empty()) {
      print_fields(it.value(), prefix + it.key() + ".");
      continue;
    }
    std::string v = scalar(it.value());
    const std::string& k = it.key();
    if (k.size() > 3 && k.compare(k.size() - 3, 3, "_ms") == 0 && it.value().is_number() &&
        it.value().get<int64_t>() > 1000000000000) {
      v = when(it.value());
    }
    std::printf("%-24s %s\n", (prefix + k + ":").c_str(), v.c_str());
  }
}

void print_gate(const json& gate) {
  if (!gate.is_object() || !gate.contains("checks") || !gate["checks"].is_array()) return;
  std::printf("\ngate: %s\n", gate.value("pass", false) ? "pass" : "REJECTED");
  Table t({"  CHECK", "VALUE", "LIMIT", "RESULT", "THRESHOLD KEY"});
  for (const auto& c : gate["checks"]) {
    t.add({"  " + c.value("check", std::string("?")), scalar(c.value("value", json())),
           std::string(c.value("at_most", false) ? "<= " : ">= ") +
               scalar(c.value("threshold", json())),
           c.value("pass", false) ? "pass" : "FAIL", c.value("key", std::string())});
  }
  t.print();
  for (const auto& f : gate.value("failures", json::array())) {
    if (f.is_string() && f.get<std::string>().find("(gate.") == std::string::npos)
      std::printf("  %s\n", f.get<std::string>().c_str());
  }
}

std::string metrics_text(const json& m) {
  if (!m.is_object()) return "";
  std::string out;
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!out.empty()) out += " ";
    out += it.key() + "=" + scalar(it.value());
  }
  return out;
}

void print_runs_table(const json& runs) {
  Table t({"RUN", "STATE", "TRIGGER", "EXAMPLES", "ADAPTER", "STARTED", "SECONDS", "VERDICT"});
  for (const auto& r : runs) {
    const int64_t started = r.value("started_ms", int64_t{0}),
                  finished = r.value("finished_ms", int64_t{0});
    t.add({scalar(r.value("id", json())), scalar(r.value("state", json())),
           scalar(r.value("trigger", json())),
           std::to_string(r.value("example_ids", json::array()).size()),
           r.value("adapter_version", int64_t{0}) ? version_name(r["adapter_version"]) : "-",
           when(r.value("started_ms", json(0))),
           finished > 0 && started > 0 ? std::to_string((finished - started) / 1000) : "-",
           clip(r.value("verdict", ""), 50)});
  }
  t.print();
}

}  // namespace kaizen::ctl
