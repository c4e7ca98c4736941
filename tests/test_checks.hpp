#pragma once
// Assertions shared by the tests.

#include <doctest/doctest.h>

#include <dropnet/core/error.hpp>
#include <initializer_list>
#include <string>

namespace dropnet::test {

/// Expects `make()` to throw InvalidArgument whose message contains every part.
template <class F>
void expect_invalid(F make, std::initializer_list<std::string> parts) {
  try {
    make();
    FAIL("expected InvalidArgument");
  } catch (const InvalidArgument& e) {
    const std::string message = e.what();
    INFO(message);
    for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
  }
}

}  // namespace dropnet::test
