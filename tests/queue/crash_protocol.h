// What the crash child writes, so the crash test can check it byte for byte.
//
// stdout lines, each written with one write(2) after the call returned:
//   "A <first_seq> <last_seq> <run> <append> <count>\n"  append succeeded
//   "K <seq>\n"                                           ack succeeded
#pragma once

#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace tally::queue::testing {

inline constexpr std::uint32_t kCrashMaxSamplesPerBatch = 7;

inline std::string crash_sample(std::uint64_t run, std::uint64_t append, std::uint64_t index) {
  // The pad makes a torn line detectable: it must be exactly 64 'x'.
  return fmt::format(R"({{"run":{},"append":{},"i":{},"pad":"{}"}})", run, append, index,
                     std::string(64, 'x'));
}

}  // namespace tally::queue::testing
