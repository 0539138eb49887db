// UTF-8 validation shared by everything that must emit valid UTF-8 or show
// text safely (line protocol, Prometheus text format, the CLI) from text that
// may hold any bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tally {

// Length of the valid UTF-8 sequence starting at s[i] (1 to 4), or 0 if the
// bytes there are not one (RFC 3629: no overlongs, surrogates, or code
// points above U+10FFFF). Requires i < s.size().
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

// How many bytes of s to keep to cut it to at most max_bytes without ending
// inside a UTF-8 sequence: s.size() when it fits, else max_bytes less the
// continuation bytes there.
std::size_t utf8_cut_length(std::string_view s, std::size_t max_bytes);

// s with every byte that does not start a valid sequence replaced by U+FFFD.
std::string utf8_sanitized(std::string_view s);

}  // namespace tally
