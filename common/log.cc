#include "tally/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace tally::log {
namespace {
std::string g_program = "tally";
std::atomic<Level> g_level{Level::info};

const char* level_name(Level level) {
  switch (level) {
    case Level::debug:
      return "debug: ";
    case Level::info:
      return "";
    case Level::warning:
      return "warning: ";
    case Level::error:
      return "error: ";
  }
  return "";
}
}  // namespace

Level parse_level(std::string_view name) {
  if (name == "debug") return Level::debug;
  if (name == "warning") return Level::warning;
  if (name == "error") return Level::error;
  return Level::info;
}

void set_program(std::string_view name) { g_program = std::string(name); }
void set_level(Level level) { g_level.store(level, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void write(Level lvl, std::string_view message) {
  std::string line = fmt::format("{}: {}{}\n", g_program, level_name(lvl), message);
  // One write per line so lines from different threads never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace tally::log
