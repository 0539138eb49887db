// tally: asks the running tallyd how it is doing.
//
// Exit codes: 0 ok (status: healthy), 1 degraded or the daemon reported an
// error, 2 the daemon cannot be reached or the command line is wrong.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>

#include "control_client.h"
#include "control_protocol.h"
#include "render.h"
#include "tally/time_util.h"
#include "terminal_text.h"

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
  std::string socket = tally::control::kDefaultSocket;
  app.add_option("--socket", socket, "tallyd's control socket")->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();

  bool json = false;
  CLI::App* status = app.add_subcommand(
      "status", "Health, backend, sampling, outbox and sinks.\n"
                "Examples: tally status; tally status --json | jq .outbox\n"
                "Exit code 0 healthy, 1 degraded, 2 unreachable.");
  status->add_flag("--json", json, "Print the raw JSON");

  int top_n = tally::control::kTopN.fallback;
  CLI::App* top = app.add_subcommand(
      "top", "Processes with most CPU in the last interval.\nExamples: tally top; tally top -n 3 --json");
  top->add_option("-n", top_n, "How many processes (" + range_text(tally::control::kTopN) + ")")
      ->check(CLI::Range(tally::control::kTopN.min, tally::control::kTopN.max))
      ->capture_default_str();
  top->add_flag("--json", json, "Print the raw JSON");

  int flush_timeout = tally::control::kFlushTimeout.fallback;
  CLI::App* flush = app.add_subcommand(
      "flush", "Ship everything pending now and wait until the outbox is empty.\n"
               "Example: tally flush --timeout 60");
  flush->add_option("--timeout", flush_timeout,
                    "Seconds to wait (" + range_text(tally::control::kFlushTimeout) + ")")
      ->check(CLI::Range(tally::control::kFlushTimeout.min, tally::control::kFlushTimeout.max))
      ->capture_default_str();
  flush->add_flag("--json", json, "Print the raw JSON");

  for (CLI::App* sub : {status, top, flush}) {
    sub->add_option("--socket", socket, "tallyd's control socket");
  }

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

  std::string request;
  std::chrono::milliseconds timeout(10000);
  if (*status) {
    request = tally::control::make_request("status");
  } else if (*top) {
    request = tally::control::make_request("top", {{"n", top_n}});
  } else {
    request = tally::control::make_request("flush", {{"timeout_s", flush_timeout}});
    timeout = std::chrono::seconds(flush_timeout + 10);
  }

  bool unreachable = false;
  auto result = tally::cli::call(socket, request, timeout, unreachable);
  if (!result.ok()) return fail(result.error().message(), unreachable ? 2 : 1);
  const nlohmann::json& r = *result;

  if (json) {
    std::fputs(tally::cli::render_json(r).c_str(), stdout);
  } else if (*status) {
    std::fputs(tally::cli::render_status(r, tally::realtime_ns()).c_str(), stdout);
  } else if (*top) {
    std::fputs(tally::cli::render_top(r, terminal_width()).c_str(), stdout);
  } else {
    std::fputs(tally::cli::render_flush(r).c_str(), stdout);
  }
  if (*status) return tally::cli::reports_healthy(r) ? 0 : 1;
  if (*flush) return tally::cli::flush_emptied(r) ? 0 : 1;
  return 0;
}
