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

// A process sample is stored without its names (comm, cmdline, cgroup), which
// are stored once per process; these put them back. `object` is the compact
// JSON object without them, `at` the offset where they go (just after '{' or
// just before a ',' or the closing '}'), `names` their members' text
// (`"comm":"sh","cmdline":"sh -c x","cgroup":"/"`). Empty names: the object
// as it is.
void append_with_names(std::string& out, std::string_view object, std::size_t at,
                       std::string_view names);
std::string with_names(std::string_view object, std::size_t at, std::string_view names);

}  // namespace tally::collector
