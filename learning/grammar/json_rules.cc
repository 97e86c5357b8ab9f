#include "learning/grammar/json_rules.h"

namespace kaizen::grammar {

int32_t JsonRules::ws() {
  if (ws_ >= 0) return ws_;
  ws_ = b_.add_rule("ws");
  const int32_t s = b_.start(ws_);
  const int32_t space = b_.add_state(ws_);
  b_.add_byte(s, ' ', space);
  b_.set_final(space);
  int32_t indent = b_.add_state(ws_);
  b_.add_byte(s, '\n', indent);
  b_.set_final(indent);
  for (int i = 0; i < kMaxIndent; ++i) {
    const int32_t next = b_.add_state(ws_);
    b_.add_byte(indent, ' ', next);
    b_.set_final(next);
    indent = next;
  }
  return ws_;
}

int32_t JsonRules::string(int32_t min_len, int32_t max_len) {
  auto it = strings_.find({min_len, max_len});
  if (it != strings_.end()) return it->second;
  std::string name = "string";
  if (min_len > 0 || max_len != Grammar::kUnbounded) {
    name += "{" + std::to_string(min_len) + "," +
            (max_len == Grammar::kUnbounded ? std::string() : std::to_string(max_len)) + "}";
  }
  const int32_t r = b_.add_rule(name, min_len, max_len);
  const int32_t body = b_.add_state(r), end = b_.add_state(r);
  b_.add_byte(b_.start(r), '"', body);
  b_.add_json_string_body(r, body, end);
  b_.set_final(end);
  strings_[{min_len, max_len}] = r;
  return r;
}

namespace {

// -?(0|[1-9][0-9]{0,15}); returns the states after the integer part (final).
std::vector<int32_t> add_integer_part(GrammarBuilder& b, int32_t rule) {
  const int32_t s = b.start(rule), minus = b.add_state(rule), zero = b.add_state(rule);
  b.add_byte(s, '-', minus);
  b.add_byte(s, '0', zero);
  b.add_byte(minus, '0', zero);
  std::vector<int32_t> ends{zero};
  int32_t digits = b.add_state(rule);
  b.add_bytes(s, '1', '9', digits);
  b.add_bytes(minus, '1', '9', digits);
  ends.push_back(digits);
  for (int i = 1; i < kMaxIntDigits; ++i) {
    const int32_t next = b.add_state(rule);
    b.add_bytes(digits, '0', '9', next);
    ends.push_back(next);
    digits = next;
  }
  for (int32_t e : ends) b.set_final(e);
  return ends;
}

// [0-9]{1,max} from `from`; returns the states after each digit (final).
std::vector<int32_t> add_digits(GrammarBuilder& b, int32_t rule, int32_t from, int max) {
  std::vector<int32_t> ends;
  for (int i = 0; i < max; ++i) {
    const int32_t next = b.add_state(rule);
    b.add_bytes(from, '0', '9', next);
    b.set_final(next);
    ends.push_back(next);
    from = next;
  }
  return ends;
}

}  // namespace

int32_t JsonRules::integer() {
  if (integer_ >= 0) return integer_;
  integer_ = b_.add_rule("integer");
  add_integer_part(b_, integer_);
  return integer_;
}

int32_t JsonRules::number() {
  if (number_ >= 0) return number_;
  number_ = b_.add_rule("number");
  const int32_t r = number_;
  const int32_t dot = b_.add_state(r), exp = b_.add_state(r), sign = b_.add_state(r);
  std::vector<int32_t> before_exp = add_integer_part(b_, r);
  for (int32_t e : before_exp) b_.add_byte(e, '.', dot);
  for (int32_t f : add_digits(b_, r, dot, kMaxFracDigits)) before_exp.push_back(f);
  for (int32_t e : before_exp) {
    b_.add_byte(e, 'e', exp);
    b_.add_byte(e, 'E', exp);
  }
  b_.add_byte(exp, '+', sign);
  b_.add_byte(exp, '-', sign);
  const std::vector<int32_t> exp_digits = add_digits(b_, r, exp, kMaxExpDigits);
  // After a sign the same digit chain, so [+-] adds one state only.
  b_.add_bytes(sign, '0', '9', exp_digits[0]);
  return r;
}

int32_t JsonRules::literals(const std::vector<std::string>& texts, const std::string& name) {
  const int32_t r = b_.add_rule(name);
  for (const std::string& t : texts) b_.set_final(b_.add_literal(b_.start(r), t));
  return r;
}

int32_t JsonRules::boolean() {
  if (boolean_ < 0) boolean_ = literals({"true", "false"}, "boolean");
  return boolean_;
}

int32_t JsonRules::null() {
  if (null_ < 0) null_ = literals({"null"}, "null");
  return null_;
}

void JsonRules::with_ws(int32_t from, const std::function<void(int32_t)>& emit) {
  emit(from);
  const int32_t after = b_.add_state(b_.rule_of(from));
  b_.add_call(from, ws(), after);
  emit(after);
}

void JsonRules::add_value_calls(int32_t from, int32_t to, int depth) {
  if (scalar_words_ < 0) scalar_words_ = literals({"true", "false", "null"}, "true|false|null");
  b_.add_call(from, string(), to);
  b_.add_call(from, number(), to);
  b_.add_call(from, scalar_words_, to);
  if (depth <= kMaxAnyDepth) {
    b_.add_call(from, any_object(depth), to);
    b_.add_call(from, any_array(depth), to);
  }
}

int32_t JsonRules::any_value(int depth) {
  auto it = values_.find(depth);
  if (it != values_.end()) return it->second;
  const int32_t r = b_.add_rule("value@" + std::to_string(depth));
  values_[depth] = r;
  const int32_t end = b_.add_state(r);
  add_value_calls(b_.start(r), end, depth);
  b_.set_final(end);
  return r;
}

// '{' ws? ('}' | member (',' ws? member)* ws? '}'), member = string ':' ' '? value.
int32_t JsonRules::any_object(int depth) {
  auto it = objects_.find(depth);
  if (it != objects_.end()) return it->second;
  const int32_t r = b_.add_rule("object@" + std::to_string(depth));
  objects_[depth] = r;
  const int32_t open = b_.add_state(r), key = b_.add_state(r), colon = b_.add_state(r);
  const int32_t space = b_.add_state(r), value = b_.add_state(r), comma = b_.add_state(r);
  const int32_t end = b_.add_state(r);
  b_.add_byte(b_.start(r), '{', open);
  with_ws(open, [&](int32_t s) {
    b_.add_byte(s, '}', end);
    b_.add_call(s, string(), key);
  });
  b_.add_byte(key, ':', colon);
  b_.add_byte(colon, ' ', space);
  add_value_calls(colon, value, depth + 1);
  add_value_calls(space, value, depth + 1);
  b_.add_byte(value, ',', comma);
  with_ws(value, [&](int32_t s) { b_.add_byte(s, '}', end); });
  with_ws(comma, [&](int32_t s) { b_.add_call(s, string(), key); });
  b_.set_final(end);
  return r;
}

// '[' ws? (']' | value (',' ws? value)* ws? ']').
int32_t JsonRules::any_array(int depth) {
  auto it = arrays_.find(depth);
  if (it != arrays_.end()) return it->second;
  const int32_t r = b_.add_rule("array@" + std::to_string(depth));
  arrays_[depth] = r;
  const int32_t open = b_.add_state(r), value = b_.add_state(r), comma = b_.add_state(r);
  const int32_t end = b_.add_state(r);
  b_.add_byte(b_.start(r), '[', open);
  with_ws(open, [&](int32_t s) {
    b_.add_byte(s, ']', end);
    add_value_calls(s, value, depth + 1);
  });
  b_.add_byte(value, ',', comma);
  with_ws(value, [&](int32_t s) { b_.add_byte(s, ']', end); });
  with_ws(comma, [&](int32_t s) { add_value_calls(s, value, depth + 1); });
  b_.set_final(end);
  return r;
}

// The counter counts items: each item call is a kInc, ',' needs room for one more, ']' needs
// min_items.
int32_t JsonRules::array(int32_t item, int32_t min_items, int32_t max_items) {
  const int32_t r = b_.add_rule("array", min_items, max_items);
  const int32_t open = b_.add_state(r), value = b_.add_state(r), comma = b_.add_state(r);
  const int32_t end = b_.add_state(r);
  b_.add_byte(b_.start(r), '[', open);
  with_ws(open, [&](int32_t s) {
    if (min_items == 0) b_.add_byte(s, ']', end);
    if (max_items > 0) b_.add_call(s, item, value, CountOp::kInc);
  });
  if (max_items > 1) b_.add_byte(value, ',', comma, CountOp::kCheckBelowMax);
  // Whitespace before ']' only once ']' may come: it would be a dead end below min_items.
  const int32_t closing = b_.add_state(r);
  b_.add_byte(value, ']', end, CountOp::kCheckMin);
  b_.add_call(value, ws(), closing, CountOp::kCheckMin);
  b_.add_byte(closing, ']', end);
  with_ws(comma, [&](int32_t s) { b_.add_call(s, item, value, CountOp::kInc); });
  b_.set_final(end);
  return r;
}

}  // namespace kaizen::grammar
