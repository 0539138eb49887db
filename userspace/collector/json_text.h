// Writing JSON text by hand, for the hot paths that should not build a DOM:
// re-serializing each received sample, and streaming stored samples out.
#pragma once

#include <string>
#include <string_view>

namespace tally::collector {

// Appends s as a JSON string literal (quotes included). s must be valid
// UTF-8 (the JSON parser guarantees it for everything it hands out); bytes
// >= 0x80 are copied as they are, as nlohmann::json::dump() does by default.
void append_json_string(std::string& out, std::string_view s);

}  // namespace tally::collector
