// A prototype of a columnar native format, measured by bench/wire_bytes
// against protocol version 1 (which tally-collector speaks). Not used by
// tallyd: it shows how far a per-batch encoding gets (docs/BENCHMARKS.md,
// row 5) and is the starting point of a protocol version 2.
//
// Each body carries one string table and, per "shape" of line (same keys,
// same value types), one column per key; unsigned integers are sent as the
// difference from the row above when that is shorter. A line that is not a
// flat object of strings without escapes, numbers and booleans is sent as
// its text ("raw"). Deterministic: a pure function of the lines.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace tally::bench {

// {"version":2,...,"count":N,"strings":[...],"tables":[...],"raw":[...]}
std::string encode_columns(std::string_view agent_id, std::string_view host, std::uint64_t seq,
                           std::span<const std::string_view> lines);

}  // namespace tally::bench
