// Status and Result<T>: how every storage call reports success or failure.
//
// Modelled on rocksdb::Status. A Status is a code plus a human message that already
// names what failed (column family, key, directory), so callers can log or show it as
// is. Statuses are cheap to copy and never throw. Both types are [[nodiscard]]: an
// ignored storage error is a bug.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace kaizen::storage {

class [[nodiscard]] Status {
 public:
  enum class Code : int {
    kOk = 0,
    kNotFound = 1,         // the record / directory / backup does not exist
    kCorruption = 2,       // stored bytes cannot be decoded; message names cf and key
    kIOError = 3,          // the file system or RocksDB failed
    kInvalidArgument = 4,  // the caller passed something malformed
    kBusy = 5,             // the database is locked by another process or handle
    kNotSupported = 6,     // data written by a newer kaizen (schema or record version)
    kAlreadyExists = 7,    // e.g. importing an example whose content is already stored
    kAborted = 8,          // a precondition changed under us (e.g. example not pending)
    kNoSpace = 9,          // the file system holding the database is full (ENOSPC)
  };

  Status() = default;  // OK

  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status Busy(std::string msg) { return Status(Code::kBusy, std::move(msg)); }
  static Status NotSupported(std::string msg) {
    return Status(Code::kNotSupported, std::move(msg));
  }
  static Status AlreadyExists(std::string msg) {
    return Status(Code::kAlreadyExists, std::move(msg));
  }
  static Status Aborted(std::string msg) { return Status(Code::kAborted, std::move(msg)); }
  static Status NoSpace(std::string msg) { return Status(Code::kNoSpace, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsNotSupported() const { return code_ == Code::kNotSupported; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }
  bool IsAborted() const { return code_ == Code::kAborted; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }

  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "OK" or "<CodeName>: <message>", e.g. "Corruption: messages/0000...: bad JSON".
  std::string ToString() const;
  static const char* CodeName(Code code);

  // Returns a copy whose message is "<prefix>: <message>" (OK stays OK).
  Status WithContext(const std::string& prefix) const {
    if (ok()) return *this;
    return Status(code_, prefix + ": " + msg_);
  }

 private:
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string msg_;
};

// A value or the Status explaining why there is none. result.ok() is status().ok();
// value()/operator* must only be called when ok() (asserted in debug builds).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit on purpose
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result(Status) needs an error; pass a value for success");
    if (status_.ok()) status_ = Status::InvalidArgument("Result built from OK status");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace kaizen::storage

// Return early from a function returning Status or Result<U> when `expr` (a Status)
// is not OK.
#define KAIZEN_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::kaizen::storage::Status _kaizen_s = (expr); \
    if (!_kaizen_s.ok()) return _kaizen_s;        \
  } while (0)
