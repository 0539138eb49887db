// Whole-string decimal parsing for text from the kernel, the network and
// the command line.
#pragma once

#include <charconv>
#include <concepts>
#include <string_view>

namespace tally {

// True and sets `out` when all of `text` is a decimal number that fits T:
// "42" yes; "", " 42", "42x", "+1", "0x2a" and out-of-range values no (and
// `out` is left alone). A minus sign only for signed T.
template <std::integral T>
bool parse_decimal(std::string_view text, T& out) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return false;
  out = value;
  return true;
}

}  // namespace tally
