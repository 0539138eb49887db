// Escaping for the InfluxDB line protocol
// (docs.influxdata.com, "line protocol reference", special characters):
//
//   measurement          comma and space are escaped with a backslash
//   tag key/value,       comma, equals sign and space are escaped
//   field key
//   string field value   inside double quotes; " and \ are escaped
//
// The protocol cannot carry a newline in any element, and a backslash left
// unescaped before a comma, space or quote would swallow it, so two more
// rules make any text safe:
//   - backslashes are escaped everywhere (as "\\");
//   - control characters (newline, carriage return, tab, other C0 and DEL)
//     become visible escapes: "\n", "\r", "\t", "\xNN" (so a command line
//     with an embedded newline stays one point and stays readable);
//   - bytes that are not valid UTF-8 become U+FFFD.
// Functions append to `out` to keep encoding allocation-free per element.
#pragma once

#include <string>
#include <string_view>

namespace tally::shipping::line_protocol {

void append_measurement(std::string& out, std::string_view name);
// Tag keys, tag values and field keys share one rule set.
void append_key(std::string& out, std::string_view text);
// The value with its surrounding double quotes.
void append_string_field(std::string& out, std::string_view text);

}  // namespace tally::shipping::line_protocol
