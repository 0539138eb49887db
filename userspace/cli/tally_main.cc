// tally: asks the running tallyd how it is doing.
//
// Exit codes: 0 ok (status: healthy), 1 degraded or the daemon reported an
// error, 2 the daemon cannot be reached or the command line is wrong.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include <CLI/CLI.hpp>

#include "cli/control_client.h"
#include "cli/live_top.h"
#include "cli/render.h"
#include "cli/terminal_text.h"
#include "control/control_protocol.h"
#include "tally/time_util.h"

namespace {

std::size_t terminal_width() {
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    return ws.ws_col;
  }
  return 0;  // not a terminal: do not cut
}

// Messages may carry tallyd's words (its errors name processes, paths,
// URLs): shown through printable() like everything else from it.
int fail(const std::string& message, int code) {
  std::fprintf(stderr, "tally: %s\n", tally::cli::printable(message).c_str());
  return code;
}

std::string range_text(const tally::control::WholeNumberField& f) {
  return fmt::format("{} to {}", f.min, f.max);
}

// What the command line asked for.
struct Invocation {
  std::string socket = tally::control::kDefaultSocket;
  bool json = false;
  int top_n = tally::control::kTopN.fallback;
  std::string top_by = "process";
  std::string top_sort = "cpu";
  bool top_once = false;
  CLI::Option* top_n_option = nullptr;
  int flush_timeout = tally::control::kFlushTimeout.fallback;
  CLI::App* status = nullptr;
  CLI::App* top = nullptr;
  CLI::App* flush = nullptr;
};

void add_commands(CLI::App& app, Invocation& inv) {
  inv.status = app.add_subcommand("status",
                                  "Health, backend, sampling, outbox and sinks.\n"
                                  "Examples: tally status; tally status --json | jq .outbox\n"
                                  "Exit code 0 healthy, 1 degraded, 2 unreachable.");
  inv.status->add_flag("--json", inv.json, "Print the raw JSON");

  inv.top = app.add_subcommand(
      "top",
      "Processes with most CPU in the last interval, or their sums per group.\n"
      "On a terminal: a screen refreshed at every interval until q or Ctrl-C, with\n"
      "tallyd's health, outbox and sinks on top; keys P, M, N, W, C sort by CPU,\n"
      "RSS, PID, wait, container. Piped, or with --once or --json: printed once.\n"
      "-n is how many processes, as it always was (not top's number of refreshes).\n"
      "Examples: tally top; tally top --sort rss; tally top -n 3 --once;\n"
      "          tally top -n 3 --json; tally top --by container");
  inv.top_n_option = inv.top
                         ->add_option("-n", inv.top_n,
                                      "How many processes (" + range_text(tally::control::kTopN) +
                                          "); on the live screen, at most as many as fit")
                         ->check(CLI::Range(tally::control::kTopN.min, tally::control::kTopN.max))
                         ->capture_default_str();
  inv.top
      ->add_option(
          "--by", inv.top_by,
          std::string("One row per process, or per group (") + tally::control::kTopGroupings + ")")
      ->check(CLI::IsMember({"process", "cgroup", "container", "pod"}))
      ->capture_default_str();
  inv.top
      ->add_option("--sort", inv.top_sort,
                   std::string("Which rows come first (") + tally::control::kTopSorts +
                       "): most CPU, RSS or wait, lowest PID, container name")
      ->check(CLI::IsMember({"cpu", "rss", "pid", "wait", "container"}, CLI::ignore_case))
      ->capture_default_str();
  inv.top->add_flag("--once", inv.top_once, "Print once and exit, also on a terminal");
  inv.top->add_flag("--json", inv.json, "Print the raw JSON");

  inv.flush = app.add_subcommand("flush",
                                 "Ship everything pending now and wait until the outbox is empty.\n"
                                 "Example: tally flush --timeout 60");
  inv.flush
      ->add_option("--timeout", inv.flush_timeout,
                   "Seconds to wait (" + range_text(tally::control::kFlushTimeout) + ")")
      ->check(CLI::Range(tally::control::kFlushTimeout.min, tally::control::kFlushTimeout.max))
      ->capture_default_str();
  inv.flush->add_flag("--json", inv.json, "Print the raw JSON");

  for (CLI::App* sub : {inv.status, inv.top, inv.flush}) {
    sub->add_option("--socket", inv.socket, "tallyd's control socket");
  }
}

// Asks tallyd and prints its answer; the exit code.
int ask(const Invocation& inv) {
  std::string request;
  std::chrono::milliseconds timeout(10000);
  if (*inv.status) {
    request = tally::control::make_request("status");
  } else if (*inv.top) {
    request = tally::control::make_request(
        "top", {{"n", inv.top_n}, {"by", inv.top_by}, {"sort", inv.top_sort}});
  } else {
    request = tally::control::make_request("flush", {{"timeout_s", inv.flush_timeout}});
    timeout = std::chrono::seconds(inv.flush_timeout + 10);
  }

  bool unreachable = false;
  auto result = tally::cli::call(inv.socket, request, timeout, unreachable);
  if (!result.ok()) return fail(result.error().message(), unreachable ? 2 : 1);
  const nlohmann::json& r = *result;

  if (inv.json) {
    std::fputs(tally::cli::render_json(r).c_str(), stdout);
  } else if (*inv.status) {
    std::fputs(tally::cli::render_status(r, tally::realtime_ns()).c_str(), stdout);
  } else if (*inv.top) {
    std::fputs(tally::cli::render_top(r, terminal_width()).c_str(), stdout);
  } else {
    std::fputs(tally::cli::render_flush(r).c_str(), stdout);
  }
  if (*inv.status) return tally::cli::reports_healthy(r) ? 0 : 1;
  if (*inv.flush) return tally::cli::flush_emptied(r) ? 0 : 1;
  return 0;
}

// `tally top` on a terminal, unless asked to print once: the live screen.
bool wants_live_top(const Invocation& inv) {
  return *inv.top && !inv.json && !inv.top_once && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

// The live screen; the exit code, or nullopt to print once instead (a
// terminal ncurses does not know).
std::optional<int> live_top(const Invocation& inv) {
  tally::cli::LiveTopOptions options;
  options.socket = inv.socket;
  options.by = inv.top_by;
  options.sort =
      tally::control::parse_top_sort(inv.top_sort).value_or(tally::control::TopSort::cpu);
  if (inv.top_n_option->count() > 0) options.max_rows = inv.top_n;
  const tally::cli::LiveTopOutcome outcome = tally::cli::run_live_top(options);
  if (outcome.no_terminal) return std::nullopt;
  if (!outcome.error.empty()) return fail(outcome.error, outcome.exit_code);
  return outcome.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tally: asks the running tallyd how it is doing.\n\n"
      "Examples:\n"
      "  tally status             health, backend, outbox and shipping at a glance\n"
      "  tally top -n 5           the five processes with most CPU in the last interval\n"
      "  tally flush --timeout 60 ship everything pending now\n"
      "Exit codes: 0 healthy/ok, 1 degraded or error, 2 tallyd unreachable or bad usage.",
      "tally"};
  Invocation inv;
  app.add_option("--socket", inv.socket, "tallyd's control socket")->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();
  add_commands(app, inv);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help on a subcommand
      std::fputs(e.what(), stdout);
      return app.exit(e);
    }
    return fail(std::string(e.what()) + " (see tally --help)", 2);
  }
  if (wants_live_top(inv)) {
    if (const auto code = live_top(inv)) return *code;
  }
  return ask(inv);
}
