// The one error convention of Weft's user space: functions that can fail
// return weft::Status or weft::Result<T>. Messages name the step and the object
// ("attach connect4 to /sys/fs/cgroup/x: Operation not permitted"). Exceptions
// are not used across module boundaries.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace weft {

class Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string msg, int err = 0) { return Status(std::move(msg), err); }
  // "step: strerror(err)"; err is a positive errno value.
  static Status Errno(const std::string& step, int err) {
    return Status(step + ": " + std::strerror(err), err);
  }

  bool ok() const { return !msg_.has_value(); }
  explicit operator bool() const { return ok(); }
  const std::string& message() const {
    static const std::string kOk = "ok";
    return msg_ ? *msg_ : kOk;
  }
  int err() const { return err_; }
  // Prefix the message with context: "reconcile: " + message.
  Status Wrap(const std::string& ctx) const {
    if (ok()) return *this;
    return Status(ctx + ": " + *msg_, err_);
  }

 private:
  Status(std::string msg, int err) : msg_(std::move(msg)), err_(err) {}
  std::optional<std::string> msg_;
  int err_ = 0;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must be an error
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace weft

#define WEFT_RETURN_IF_ERROR(expr)            \
  do {                                        \
    ::weft::Status _st = (expr);              \
    if (!_st.ok()) return _st;                \
  } while (0)
