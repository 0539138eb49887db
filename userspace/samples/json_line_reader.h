// A sample's JSON line (json_line.h) read back into its struct: for outbox
// records written before compact records, and for tools that read
// `tallyd --stdout`.
#pragma once

#include <string_view>

#include "samples/sample.h"
#include "tally/result.h"

namespace tally::samples {

// Parses one line. A line of an unknown kind comes back as an UnknownSample
// holding the line. The error names the field and what was wrong; strings
// come back as the JSON held them (valid UTF-8: tallyd replaced bad bytes
// with U+FFFD when it wrote the line).
Result<Sample> parse_json_line(std::string_view line);

}  // namespace tally::samples
