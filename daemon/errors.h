// The daemon's domain errors (docs/DESIGN.md §Errors): what serve/ and learn/ return when
// an operation cannot be done. They know nothing of HTTP; the one mapping to an HTTP
// status and the OpenAI error shape is http_error() in daemon/service.h, used at the edge.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace kaizen::daemon {

enum class Errc {
  kInvalidArgument,  // the request names something malformed (a bad version, no id)
  kNotFound,         // no such record (adapter version, run, example, operation)
  kConflict,         // the record's state forbids it (a run in progress, a pruned adapter)
  kNothingToDo,      // well-formed, but there is nothing to act on (no new examples)
  kUnavailable,      // not now: disabled, busy, still starting, the disk failing
  kNoSpace,          // the disk holding the state is full: nothing was stored
  kInternal,         // a store or disk failure; the message names it
};

struct Failure {
  Errc code = Errc::kInternal;
  std::string message;  // one sentence for the operator
  std::string param;    // the offending argument ("version"), or empty

  static Failure Invalid(std::string m, std::string param = {}) {
    return {Errc::kInvalidArgument, std::move(m), std::move(param)};
  }
  static Failure NotFound(std::string m) { return {Errc::kNotFound, std::move(m), {}}; }
  static Failure Conflict(std::string m) { return {Errc::kConflict, std::move(m), {}}; }
  static Failure NothingToDo(std::string m) { return {Errc::kNothingToDo, std::move(m), {}}; }
  static Failure Unavailable(std::string m) { return {Errc::kUnavailable, std::move(m), {}}; }
  static Failure Internal(std::string m) { return {Errc::kInternal, std::move(m), {}}; }
  static Failure NoSpace(std::string m) { return {Errc::kNoSpace, std::move(m), {}}; }
};

// A value or the error that prevented it: Outcome<T> (a domain Failure, serve/ and learn/)
// and Result<T> (an HTTP Error, daemon/service.h) are this one type.
template <class T, class E>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(E error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

template <class T>
using Outcome = Expected<T, Failure>;

}  // namespace kaizen::daemon
