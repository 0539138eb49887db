// Human-readable forms of the daemon's answers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace tally::cli {

// `tally status`: a screenful an operator reads at a glance. now_ns anchors
// "ago" and "in" times.
std::string render_status(const nlohmann::json& status, std::uint64_t now_ns);

// `tally top`: like top's first screen; cmdline cut to `width` columns
// (0: no limit).
std::string render_top(const nlohmann::json& top, std::size_t width);

}  // namespace tally::cli
