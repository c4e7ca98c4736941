#pragma once
// Number formatting shared by the model summary and the progress callback.

#include <string>

namespace dropnet {

/// 1234567 -> "1,234,567" (a leading '-' for negative numbers).
inline std::string thousands(long long n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  for (int pos = static_cast<int>(digits.size()) - 3; pos > 0; pos -= 3)
    digits.insert(static_cast<std::size_t>(pos), ",");
  return (n < 0 ? "-" : "") + digits;
}

}  // namespace dropnet
