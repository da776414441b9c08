#pragma once
// expect_error_contains(fn, "text"): fn must throw a pit::Error whose message contains "text".
// A failure is reported at the caller's line, with the message that was actually thrown.
#include <gtest/gtest.h>

#include <exception>
#include <initializer_list>
#include <source_location>
#include <string>
#include <string_view>

#include "core/error.h"

namespace pit::test {

// The message of the pit::Error that fn throws; a failure (and "") when it throws nothing or
// something else.
template <typename Fn>
std::string error_message(Fn&& fn, const std::source_location& where) {
  try {
    fn();
  } catch (const pit::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line()))
        << "expected a pit::Error, got another exception: " << e.what();
    return "";
  } catch (...) {
    ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line()))
        << "expected a pit::Error, got an exception of unknown type";
    return "";
  }
  ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line()))
      << "expected a pit::Error, but nothing was thrown";
  return "";
}

template <typename Fn>
void expect_error_contains(Fn&& fn, std::string_view needle,
                           const std::source_location where = std::source_location::current()) {
  const std::string message = error_message(fn, where);
  if (message.empty()) return;  // already reported
  if (message.find(needle) == std::string::npos)
    ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line()))
        << "the error message does not contain \"" << needle << "\"\n  message: " << message;
}

// Every one of `needles` must appear in the message.
template <typename Fn>
void expect_error_contains_all(Fn&& fn, std::initializer_list<std::string_view> needles,
                               const std::source_location where = std::source_location::current()) {
  const std::string message = error_message(fn, where);
  if (message.empty()) return;
  for (std::string_view needle : needles)
    if (message.find(needle) == std::string::npos)
      ADD_FAILURE_AT(where.file_name(), static_cast<int>(where.line()))
          << "the error message does not contain \"" << needle << "\"\n  message: " << message;
}

}  // namespace pit::test
