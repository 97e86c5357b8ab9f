#include "learning/grammar/parse_stacks.h"

#include <algorithm>

namespace kaizen::grammar {

bool ParseStacks::passes(CountOp op, int32_t count, const Grammar::Rule& rule) const {
  switch (op) {
    case CountOp::kNone:
      return true;
    case CountOp::kInc:
    case CountOp::kCheckBelowMax:
      return count < rule.max_count;
    case CountOp::kCheckMin:
      return count >= rule.min_count;
  }
  return false;
}

int32_t ParseStacks::apply(CountOp op, int32_t count, const Grammar::Rule& rule) const {
  // An unbounded rule's counter stays 0, so equal stacks compare equal.
  return op == CountOp::kInc && rule.counted() ? count + 1 : count;
}

int32_t ParseStacks::push(int32_t state, int32_t count, int32_t parent) {
  const int64_t below = parent >= 0 ? nodes_[parent].fin : 0;
  const int64_t fin = std::min<int64_t>(g_->dist(state, count) + below, Grammar::kInfinite);
  nodes_.push_back({state, count, parent, static_cast<int32_t>(fin)});
  return static_cast<int32_t>(nodes_.size() - 1);
}

void ParseStacks::expand(int32_t n, size_t out_begin, std::vector<int32_t>& out, bool& complete) {
  const Node node = nodes_[n];
  const Grammar::State& st = g_->state(node.state);
  if (st.edges_begin != st.edges_end && out.size() - out_begin < kMaxPositions) {
    bool seen = false;
    for (size_t i = out_begin; i < out.size() && !seen; ++i) {
      const Node& o = nodes_[out[i]];
      seen = o.state == node.state && o.count == node.count && o.parent == node.parent;
    }
    if (!seen) out.push_back(n);
  }
  if (st.calls_begin != st.calls_end) {
    const Grammar::Rule& rule = g_->rule(st.rule);
    for (const CallEdge& c : g_->calls(node.state)) {
      if (!passes(c.op, node.count, rule)) continue;
      const int32_t ret = push(c.ret, apply(c.op, node.count, rule), node.parent);
      expand(push(g_->rule(c.rule).start, 0, ret), out_begin, out, complete);
    }
  }
  if (st.final) {
    if (node.parent < 0) {
      complete = true;
    } else if (std::find(popped_.begin(), popped_.end(), node.parent) == popped_.end()) {
      popped_.push_back(node.parent);
      expand(node.parent, out_begin, out, complete);
    }
  }
}

void ParseStacks::start(std::vector<int32_t>& out) {
  bool complete = false;
  popped_.clear();
  expand(push(g_->rule(g_->root()).start, 0, -1), out.size(), out, complete);
}

bool ParseStacks::step(const std::vector<int32_t>& in, size_t begin, size_t end, uint8_t b,
                       std::vector<int32_t>& out) {
  bool complete = false;
  popped_.clear();
  const size_t out_begin = out.size();
  for (size_t i = begin; i < end; ++i) {
    const Node p = nodes_[in[i]];  // by value: push() may move the pool, and `in` may be `out`
    const ByteEdge* e = g_->find_edge(p.state, b);
    if (!e) continue;
    const Grammar::Rule& rule = g_->rule(g_->state(p.state).rule);
    if (!passes(e->op, p.count, rule)) continue;
    expand(push(e->target, apply(e->op, p.count, rule), p.parent), out_begin, out, complete);
  }
  return complete;
}

void ParseStacks::compact(std::vector<int32_t>& tops) {
  std::vector<int32_t> keep;
  std::vector<int32_t> renum(nodes_.size(), -1);
  for (int32_t t : tops) {
    for (int32_t n = t; n >= 0 && renum[n] < 0; n = nodes_[n].parent) {
      renum[n] = 0;
      keep.push_back(n);
    }
  }
  std::sort(keep.begin(), keep.end());  // parents are made before their children
  std::vector<Node> fresh;
  fresh.reserve(keep.size());
  for (int32_t n : keep) {
    renum[n] = static_cast<int32_t>(fresh.size());
    Node node = nodes_[n];
    if (node.parent >= 0) node.parent = renum[node.parent];
    fresh.push_back(node);
  }
  for (int32_t& t : tops) t = renum[t];
  nodes_.swap(fresh);
}

}  // namespace kaizen::grammar
