// The pushdown side of matching (used by Matcher): the set of parse stacks that a grammar can
// be in after some bytes, advanced one byte at a time.
//
// Stacks are persistent: frames live in one pool as (state, count, parent) nodes, and a stack
// is named by its top node, so stacks share their common bottom and a step only appends
// nodes. Undoing steps (the matcher's depth-first walk over the token trie, or a rejected
// token) is truncating the pool back to an earlier size.
//
// A "position" is a top node whose state has byte edges; stepping keeps positions in that
// normal form by expanding calls (push the callee's start) and final states (pop to the
// caller) right after each byte. Each node also carries `fin`, the fewest bytes that finish
// its whole stack (Grammar::dist summed down to the bottom), so the token budget costs one
// load per position.
#pragma once

#include <cstdint>
#include <vector>

#include "learning/grammar/grammar.h"

namespace kaizen::grammar {

class ParseStacks {
 public:
  struct Node {
    int32_t state;
    int32_t count;   // the counter of the state's rule
    int32_t parent;  // the caller's frame (its state is where the caller continues); -1 = none
    int32_t fin;     // fewest bytes that end this stack
  };
  // An ambiguous grammar could multiply stacks; past this many positions per step the rest
  // are dropped (what is kept still only ever accepts sentences of the grammar).
  static constexpr size_t kMaxPositions = 256;

  explicit ParseStacks(const Grammar* grammar) : g_(grammar) {}

  // Appends the positions at the start of the grammar to out.
  void start(std::vector<int32_t>& out);
  // Advances positions in[begin, end) by byte b, appending the resulting positions to out
  // (which may be `in` itself). Returns whether the bytes so far may end here (a stack
  // popped its last frame).
  bool step(const std::vector<int32_t>& in, size_t begin, size_t end, uint8_t b,
            std::vector<int32_t>& out);

  const Node& node(int32_t i) const { return nodes_[i]; }
  size_t pool_size() const { return nodes_.size(); }
  void truncate(size_t n) { nodes_.resize(n); }
  // Rebuilds the pool with only the nodes under `tops`, renumbering tops.
  void compact(std::vector<int32_t>& tops);

 private:
  int32_t push(int32_t state, int32_t count, int32_t parent);
  bool passes(CountOp op, int32_t count, const Grammar::Rule& rule) const;
  int32_t apply(CountOp op, int32_t count, const Grammar::Rule& rule) const;
  void expand(int32_t n, size_t out_begin, std::vector<int32_t>& out, bool& complete);

  const Grammar* g_;
  std::vector<Node> nodes_;
  std::vector<int32_t> popped_;  // callers already expanded during the current step
};

}  // namespace kaizen::grammar
