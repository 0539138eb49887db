// Text from tallyd made safe to print on a terminal.
//
// tallyd's answers carry what processes call themselves (comm, cmdline) and
// text from elsewhere (cgroups, paths, sink URLs, servers' error messages).
// Any of it may hold escape sequences that would retitle the window, move
// the cursor or rewrite what the operator sees, or bidirectional controls
// that reorder it. printable() shows those as escapes instead:
//   C0 controls (tab and newline too) and DEL   \x1b  \x7f
//   C1 controls U+0080 to U+009F                \u009b
//   bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E,
//   U+2066 to U+2069)                            \u202e
//   bytes that are not valid UTF-8              \xff
// Everything else, backslash included, passes unchanged.
#pragma once

#include <string>
#include <string_view>

namespace tally::cli {

std::string printable(std::string_view text);

}  // namespace tally::cli
