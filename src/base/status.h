// Status and Result<T>: how library code reports bad input without aborting.
// Asserts are for bugs; anything a user can cause (a corrupt file, a bad
// request) comes back as an error message the caller prints or returns.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <variant>

namespace slim {

class Status {
 public:
  Status() = default;
  static Status error(std::string message) { return Status(std::move(message)); }
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& message() const { return message_; }
  const Status& status() const { return *this; }  // so Status and Result<T> read alike

 private:
  explicit Status(std::string message) : failed_(true), message_(std::move(message)) {}
  bool failed_ = false;
  std::string message_;
};

// printf-style message builder for errors.
template <class... Args>
std::string format(const char* fmt, Args... args) {
  int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string s(n > 0 ? n : 0, '\0');
  std::snprintf(s.data(), s.size() + 1, fmt, args...);
  return s;
}

template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}     // NOLINT: must be an error
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const std::string& error() const { return std::get<1>(v_).message(); }
  Status status() const { return ok() ? Status() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace slim

// Propagate an error Status/Result from an expression.
#define SLIM_RETURN_IF_ERROR(expr)                        \
  do {                                                    \
    auto _slim_st = (expr);                               \
    if (!_slim_st.ok()) return ::slim::Status::error(_slim_st.status().message()); \
  } while (0)
