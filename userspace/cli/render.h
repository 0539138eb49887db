// Human-readable forms of the daemon's answers.
//
// They take any JSON (a result of another version, or of something that is
// not tallyd at all): what is missing or of an unexpected type reads as
// empty or 0, nothing throws. Every string from the daemon is shown through
// printable() (terminal_text.h), so no escape sequence reaches the terminal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tally::cli {

// `tally status`: a screenful an operator reads at a glance. now_ns anchors
// "ago" and "in" times.
std::string render_status(const nlohmann::json& status, std::uint64_t now_ns);

// `tally top`: like top's first screen; cmdline cut to `width` columns
// (0: no limit).
std::string render_top(const nlohmann::json& top, std::size_t width);

// The column titles, then one line per row, of `tally top`, uncut: what
// render_top prints, for a screen that fits them its own way. Without
// with_container, process rows leave the CONTAINER column out.
std::vector<std::string> top_table(const nlohmann::json& top, bool with_container);

// `tally flush`: what went; and whether the outbox is empty now.
std::string render_flush(const nlohmann::json& flush);
bool flush_emptied(const nlohmann::json& flush);

// Whether a status result says "healthy" (the exit code of `tally status`).
bool reports_healthy(const nlohmann::json& status);

// `--json`: the result, indented, ASCII only (non-ASCII and controls as
// \u escapes), so it is valid JSON and safe on a terminal.
std::string render_json(const nlohmann::json& result);

}  // namespace tally::cli
