// Minimal leveled logging to stderr (journald adds timestamps under systemd).
//
// tally logs state changes, not events: one line when shipping starts failing,
// one when it recovers. Nothing on the per-interval path logs at info level.
// Thread-safe: each line is written with a single write(2).
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace tally::log {

enum class Level { debug = 0, info = 1, warning = 2, error = 3 };

void set_program(std::string_view name);  // prefix, e.g. "tallyd"
// "debug", "info", "warning", "error"; anything else is info.
Level parse_level(std::string_view name);
void set_level(Level level);
Level level();
void write(Level level, std::string_view message);

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::debug) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::info) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warning(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::warning) write(Level::warning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tally::log
