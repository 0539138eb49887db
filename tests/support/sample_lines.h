// A batch payload of sample JSON lines as the structs a sink format encodes,
// for tests that write their samples as lines.
#pragma once

#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "samples/json_line_reader.h"

namespace tally::test {

inline std::vector<samples::Sample> samples_of(std::string_view payload) {
  std::vector<samples::Sample> out;
  for (std::size_t start = 0;;) {
    const std::size_t end = payload.find('\n', start);
    const std::string_view line = payload.substr(start, end - start);
    auto sample = samples::parse_json_line(line);
    if (sample.ok()) {
      out.push_back(std::move(*sample));
    } else {
      ADD_FAILURE() << "sample line " << out.size() << ": " << sample.error().message() << ": "
                    << line;
    }
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

}  // namespace tally::test
