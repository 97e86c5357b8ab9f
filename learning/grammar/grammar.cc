#include "learning/grammar/grammar.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <queue>
#include <sstream>
#include <stdexcept>

namespace kaizen::grammar {

namespace {

std::string byte_name(uint8_t b) {
  if (b >= 0x21 && b < 0x7F && b != '\'') return std::string("'") + static_cast<char>(b) + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", b);
  return buf;
}

const char* op_name(CountOp op) {
  switch (op) {
    case CountOp::kNone:
      return "";
    case CountOp::kInc:
      return " inc";
    case CountOp::kCheckMin:
      return " if>=min";
    case CountOp::kCheckBelowMax:
      return " if<max";
  }
  return "";
}

int32_t add_saturating(int32_t a, int32_t b) {
  const int64_t s = static_cast<int64_t>(a) + b;
  return s >= Grammar::kInfinite ? Grammar::kInfinite : static_cast<int32_t>(s);
}

}  // namespace

std::string Grammar::describe() const {
  std::vector<std::vector<int32_t>> by_rule(rules_.size());
  for (int32_t s = 0; s < num_states(); ++s) by_rule[states_[s].rule].push_back(s);
  std::ostringstream out;
  for (int32_t r = 0; r < num_rules(); ++r) {
    const Rule& rule = rules_[r];
    out << "rule " << r << " " << rule.name << (r == root_ ? " (root)" : "");
    if (rule.counted()) {
      out << " count " << rule.min_count << ".."
          << (rule.max_count == kUnbounded ? std::string("inf") : std::to_string(rule.max_count));
    }
    out << " min_length " << min_length(r) << "\n";
    for (int32_t s : by_rule[r]) {
      const State& st = states_[s];
      out << "  s" << s << (s == rule.start ? " start" : "") << (st.final ? " final" : "")
          << (st.string_body ? " string_body" : "") << ":";
      for (const ByteEdge& e : edges(s)) {
        out << " " << byte_name(e.lo);
        if (e.hi != e.lo) out << "-" << byte_name(e.hi);
        out << "->s" << e.target << op_name(e.op);
      }
      for (const CallEdge& c : calls(s)) {
        out << " call " << rules_[c.rule].name << "->s" << c.ret << op_name(c.op);
      }
      out << "\n";
    }
  }
  return out.str();
}

int32_t GrammarBuilder::add_rule(std::string name, int32_t min_count, int32_t max_count) {
  if (min_count < 0 || max_count < min_count) {
    throw std::logic_error("grammar: rule '" + name + "' has a bad count range");
  }
  const int32_t r = static_cast<int32_t>(rules_.size());
  rules_.push_back({std::move(name), -1, min_count, max_count});
  rules_[r].start = add_state(r);
  return r;
}

int32_t GrammarBuilder::start(int32_t rule) const {
  if (rule < 0 || rule >= static_cast<int32_t>(rules_.size())) {
    throw std::logic_error("grammar: no rule " + std::to_string(rule));
  }
  return rules_[rule].start;
}

int32_t GrammarBuilder::add_state(int32_t rule) {
  if (rule < 0 || rule >= static_cast<int32_t>(rules_.size())) {
    throw std::logic_error("grammar: no rule " + std::to_string(rule));
  }
  PendingState p;
  p.rule = rule;
  states_.push_back(std::move(p));
  return static_cast<int32_t>(states_.size() - 1);
}

int32_t GrammarBuilder::rule_of(int32_t state) const {
  check_state(state);
  return states_[state].rule;
}

void GrammarBuilder::check_state(int32_t s) const {
  if (s < 0 || s >= static_cast<int32_t>(states_.size())) {
    throw std::logic_error("grammar: no state " + std::to_string(s));
  }
}

void GrammarBuilder::add_bytes(int32_t from, uint8_t lo, uint8_t hi, int32_t to, CountOp op) {
  check_state(from);
  check_state(to);
  if (states_[from].rule != states_[to].rule || lo > hi) {
    throw std::logic_error("grammar: byte edge s" + std::to_string(from) + "->s" +
                           std::to_string(to) + " crosses rules or has an empty range");
  }
  states_[from].edges.push_back({lo, hi, op, to});
}

void GrammarBuilder::add_call(int32_t from, int32_t rule, int32_t to, CountOp op) {
  check_state(from);
  check_state(to);
  start(rule);
  if (states_[from].rule != states_[to].rule) {
    throw std::logic_error("grammar: call edge s" + std::to_string(from) + "->s" +
                           std::to_string(to) + " crosses rules");
  }
  states_[from].calls.push_back({rule, to, op});
}

void GrammarBuilder::set_final(int32_t state) {
  check_state(state);
  states_[state].final = true;
}

void GrammarBuilder::set_string_body(int32_t state) {
  check_state(state);
  states_[state].string_body = true;
}

int32_t GrammarBuilder::add_literal(int32_t from, std::string_view bytes) {
  check_state(from);
  int32_t cur = from;
  for (unsigned char b : bytes) {
    int32_t next = -1;
    for (const ByteEdge& e : states_[cur].edges) {
      if (e.lo == b && e.hi == b && e.op == CountOp::kNone && states_[e.target].literal) {
        next = e.target;
      }
    }
    if (next < 0) {
      next = add_state(states_[cur].rule);
      states_[next].literal = true;
      add_byte(cur, b, next);
    }
    cur = next;
  }
  return cur;
}

void GrammarBuilder::add_json_string_body(int32_t rule, int32_t body, int32_t end) {
  set_string_body(body);
  // Plain ASCII: everything from 0x20 but '"' and '\\'; each character counts one.
  add_bytes(body, 0x20, 0x21, body, CountOp::kInc);
  add_bytes(body, 0x23, 0x5B, body, CountOp::kInc);
  add_bytes(body, 0x5D, 0x7F, body, CountOp::kInc);
  add_byte(body, '"', end, CountOp::kCheckMin);
  // Escapes count one character each, at the backslash.
  const int32_t esc = add_state(rule);
  add_byte(body, '\\', esc, CountOp::kInc);
  for (char c : std::string_view("\"\\/bfnrt")) add_byte(esc, static_cast<uint8_t>(c), body);
  const int32_t u1 = add_state(rule), u2 = add_state(rule), u2d = add_state(rule);
  const int32_t u3 = add_state(rule), u4 = add_state(rule);
  add_byte(esc, 'u', u1);
  auto hex = [&](int32_t from, int32_t to) {
    add_bytes(from, '0', '9', to);
    add_bytes(from, 'A', 'F', to);
    add_bytes(from, 'a', 'f', to);
  };
  // \uD800-\uDFFF (surrogates) are refused: a lone one is not a character, and a pair would
  // count as one code point where this automaton counts two.
  add_bytes(u1, '0', '9', u2);
  add_bytes(u1, 'A', 'C', u2);
  add_bytes(u1, 'E', 'F', u2);
  add_bytes(u1, 'a', 'c', u2);
  add_bytes(u1, 'e', 'f', u2);
  add_byte(u1, 'D', u2d);
  add_byte(u1, 'd', u2d);
  add_bytes(u2d, '0', '7', u3);
  hex(u2, u3);
  hex(u3, u4);
  hex(u4, body);
  // UTF-8 (Unicode Table 3-7): a character counts one at its lead byte.
  const int32_t c1 = add_state(rule), c2 = add_state(rule), c3 = add_state(rule);
  add_bytes(c1, 0x80, 0xBF, body);
  add_bytes(c2, 0x80, 0xBF, c1);
  add_bytes(c3, 0x80, 0xBF, c2);
  const int32_t e0 = add_state(rule), ed = add_state(rule);
  const int32_t f0 = add_state(rule), f4 = add_state(rule);
  add_bytes(body, 0xC2, 0xDF, c1, CountOp::kInc);
  add_byte(body, 0xE0, e0, CountOp::kInc);
  add_bytes(e0, 0xA0, 0xBF, c1);
  add_bytes(body, 0xE1, 0xEC, c2, CountOp::kInc);
  add_byte(body, 0xED, ed, CountOp::kInc);
  add_bytes(ed, 0x80, 0x9F, c1);
  add_bytes(body, 0xEE, 0xEF, c2, CountOp::kInc);
  add_byte(body, 0xF0, f0, CountOp::kInc);
  add_bytes(f0, 0x90, 0xBF, c2);
  add_bytes(body, 0xF1, 0xF3, c3, CountOp::kInc);
  add_byte(body, 0xF4, f4, CountOp::kInc);
  add_bytes(f4, 0x80, 0x8F, c2);
}

// Fewest bytes to the end of each state's rule, by "need" (how many more kInc edges the
// counter must take before kCheckMin passes). Within a rule this is Dijkstra on the reversed
// edges, one layer per need; a call costs its callee's min_length, and since rules call each
// other (recursively, for JSON values) the per-rule pass repeats until nothing shrinks.
void GrammarBuilder::compute_distances(Grammar& g) const {
  const int32_t num_rules = g.num_rules();
  std::vector<std::vector<int32_t>> rule_states(num_rules);
  for (int32_t s = 0; s < g.num_states(); ++s) rule_states[g.states_[s].rule].push_back(s);
  std::vector<int32_t> min_len(num_rules, Grammar::kInfinite);

  struct Rev {
    int32_t source;
    int32_t callee;  // -1 for a byte edge (cost 1)
    CountOp op;
  };
  std::vector<std::vector<Rev>> rev(g.num_states());
  for (int32_t s = 0; s < g.num_states(); ++s) {
    for (const ByteEdge& e : g.edges(s)) rev[e.target].push_back({s, -1, e.op});
    for (const CallEdge& c : g.calls(s)) rev[c.ret].push_back({s, c.rule, c.op});
  }

  using Item = std::pair<int32_t, int32_t>;  // (distance, state)
  for (int pass = 0;; ++pass) {
    bool changed = false;
    for (int32_t r = 0; r < num_rules; ++r) {
      const Grammar::Rule& rule = g.rules_[r];
      for (int32_t k = 0; k <= rule.min_count; ++k) {
        auto at = [&](int32_t s, int32_t need) -> int32_t& {
          return g.dist_[g.states_[s].dist_begin + need];
        };
        std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue;
        for (int32_t s : rule_states[r]) {
          at(s, k) = (k == 0 && g.states_[s].final) ? 0 : Grammar::kInfinite;
        }
        if (k > 0) {  // kInc edges lead down one layer
          for (int32_t t : rule_states[r]) {
            for (const Rev& e : rev[t]) {
              if (e.op != CountOp::kInc) continue;
              const int32_t cost = e.callee < 0 ? 1 : min_len[e.callee];
              at(e.source, k) = std::min(at(e.source, k), add_saturating(cost, at(t, k - 1)));
            }
          }
        }
        for (int32_t s : rule_states[r]) {
          if (at(s, k) < Grammar::kInfinite) queue.push({at(s, k), s});
        }
        while (!queue.empty()) {
          const auto [d, t] = queue.top();
          queue.pop();
          if (d != at(t, k)) continue;
          for (const Rev& e : rev[t]) {
            if (k > 0 && (e.op == CountOp::kInc || e.op == CountOp::kCheckMin)) continue;
            const int32_t cand = add_saturating(e.callee < 0 ? 1 : min_len[e.callee], d);
            if (cand < at(e.source, k)) {
              at(e.source, k) = cand;
              queue.push({cand, e.source});
            }
          }
        }
      }
      const int32_t len = g.dist(rule.start, 0);
      if (len < min_len[r]) {
        min_len[r] = len;
        changed = true;
      }
    }
    if (!changed) break;
    if (pass > num_rules + 2) throw std::logic_error("grammar: distances do not converge");
  }
  for (int32_t r = 0; r < num_rules; ++r) {
    if (g.min_length(r) >= Grammar::kInfinite) {
      throw std::logic_error("grammar: rule '" + g.rules_[r].name + "' matches nothing");
    }
  }
  check_counted_paths(g, rule_states);
  for (int32_t s = 0; s < g.num_states(); ++s) {
    const Grammar::Rule& rule = g.rules_[g.states_[s].rule];
    if (g.dist(s, rule.min_count) >= Grammar::kInfinite) {
      throw std::logic_error("grammar: rule '" + rule.name + "' state s" + std::to_string(s) +
                             " cannot reach the end of the rule");
    }
  }
}

// In a rule with min_count > 0, a state may be reached before the counter got there; from
// there it must still be able to finish, or the matcher could walk into a dead end (e.g.
// whitespace before ']' that only a kCheckMin edge leaves). Walks the (state, need) pairs
// reachable from the rule's start and checks each can reach the end.
void GrammarBuilder::check_counted_paths(const Grammar& g,
                                         const std::vector<std::vector<int32_t>>& rule_states) {
  for (int32_t r = 0; r < g.num_rules(); ++r) {
    const Grammar::Rule& rule = g.rules_[r];
    if (rule.min_count == 0) continue;
    const int32_t width = rule.min_count + 1;
    std::vector<int32_t> local(g.num_states(), -1);
    for (size_t i = 0; i < rule_states[r].size(); ++i)
      local[rule_states[r][i]] = static_cast<int32_t>(i);
    std::vector<char> seen(rule_states[r].size() * width, 0);
    std::vector<std::pair<int32_t, int32_t>> todo{{rule.start, rule.min_count}};
    seen[local[rule.start] * width + rule.min_count] = 1;
    auto visit = [&](int32_t t, CountOp op, int32_t need) {
      if (op == CountOp::kCheckMin && need > 0) return;
      if (op == CountOp::kInc && need > 0) --need;
      if (!seen[local[t] * width + need]) {
        seen[local[t] * width + need] = 1;
        todo.push_back({t, need});
      }
    };
    while (!todo.empty()) {
      const auto [s, need] = todo.back();
      todo.pop_back();
      if (g.dist_[g.states_[s].dist_begin + need] >= Grammar::kInfinite) {
        throw std::logic_error("grammar: rule '" + rule.name + "' state s" + std::to_string(s) +
                               " is a dead end " + std::to_string(need) + " below min_count");
      }
      for (const ByteEdge& e : g.edges(s)) visit(e.target, e.op, need);
      for (const CallEdge& c : g.calls(s)) visit(c.ret, c.op, need);
    }
  }
}

std::shared_ptr<const Grammar> GrammarBuilder::build(int32_t root_rule) {
  start(root_rule);
  std::shared_ptr<Grammar> g(new Grammar());
  g->root_ = root_rule;
  g->rules_ = rules_;
  for (PendingState& p : states_) {
    std::sort(p.edges.begin(), p.edges.end(),
              [](const ByteEdge& a, const ByteEdge& b) { return a.lo < b.lo; });
    for (size_t i = 1; i < p.edges.size(); ++i) {
      if (p.edges[i].lo <= p.edges[i - 1].hi) {
        throw std::logic_error("grammar: rule '" + rules_[p.rule].name +
                               "' has overlapping byte edges at " + byte_name(p.edges[i].lo));
      }
    }
    Grammar::State st;
    st.rule = p.rule;
    st.final = p.final;
    st.string_body = p.string_body;
    st.edges_begin = static_cast<uint32_t>(g->edges_.size());
    g->edges_.insert(g->edges_.end(), p.edges.begin(), p.edges.end());
    st.edges_end = static_cast<uint32_t>(g->edges_.size());
    st.calls_begin = static_cast<uint32_t>(g->calls_.size());
    g->calls_.insert(g->calls_.end(), p.calls.begin(), p.calls.end());
    st.calls_end = static_cast<uint32_t>(g->calls_.size());
    st.dist_begin = static_cast<uint32_t>(g->dist_.size());
    g->dist_.resize(g->dist_.size() + rules_[p.rule].min_count + 1, Grammar::kInfinite);
    g->states_.push_back(st);
  }
  for (const Grammar::Rule& r : g->rules_) {
    if (g->states_[r.start].final) {
      throw std::logic_error("grammar: rule '" + r.name + "' matches the empty string");
    }
  }
  // Left recursion: a rule reachable from its own start without consuming a byte. Rules are
  // non-nullable, so only calls made at start states chain without input.
  std::vector<int> mark(g->rules_.size(), 0);  // 0 new, 1 on the path, 2 done
  std::function<void(int32_t)> visit = [&](int32_t r) {
    mark[r] = 1;
    for (const CallEdge& c : g->calls(g->rules_[r].start)) {
      if (mark[c.rule] == 1) {
        throw std::logic_error("grammar: rule '" + g->rules_[c.rule].name + "' is left-recursive");
      }
      if (mark[c.rule] == 0) visit(c.rule);
    }
    mark[r] = 2;
  };
  for (int32_t r = 0; r < g->num_rules(); ++r) {
    if (mark[r] == 0) visit(r);
  }
  compute_distances(*g);
  rules_.clear();
  states_.clear();
  return g;
}

}  // namespace kaizen::grammar
