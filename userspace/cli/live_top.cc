#include "cli/live_top.h"

// ncurses as functions, not macros: timeout(), erase(), move() and the like
// would otherwise rewrite any later code of a unity build that uses the names.
#define NCURSES_NOMACROS
#include <curses.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "cli/control_client.h"
#include "cli/lenient_json.h"
#include "cli/top_screen.h"
#include "tally/time_util.h"

namespace tally::cli {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long one request may take before the screen says tallyd is not
// answering, and how often it then asks again.
constexpr auto kRequestTimeout = 5s;
constexpr auto kRetryEvery = 2s;
// After the interval's end, tallyd needs a moment to commit the sample.
constexpr auto kSampleSettle = 300ms;

// The keys that change the sort, as in top(1) where it has them (P, M, N);
// either case works.
struct SortKey {
  char key;
  control::TopSort sort;
  const char* label;
};
constexpr SortKey kSortKeys[] = {
    {'P', control::TopSort::cpu, "%CPU"},
    {'M', control::TopSort::rss, "RSS"},
    {'N', control::TopSort::pid, "PID"},
    {'W', control::TopSort::wait, "%WAIT"},
    {'C', control::TopSort::container, "CONTAINER"},
};

volatile std::sig_atomic_t g_signal = 0;
void on_signal(int signo) { g_signal = signo; }

// Ctrl-C, a closed terminal and SIGTERM end the screen through the normal
// exit path (and so endwin). Installed before ncurses starts: it only
// catches the signals whose handler is still the default.
void catch_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a wait ends at once
  for (int signo : {SIGINT, SIGTERM, SIGHUP}) sigaction(signo, &sa, nullptr);
}

// The ncurses screen on the process's terminal, ended (the terminal as it
// was) when this goes.
class CursesScreen {
 public:
  static std::unique_ptr<CursesScreen> open() {
    SCREEN* screen = newterm(nullptr, stdout, stdin);
    if (screen == nullptr) return nullptr;
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    leaveok(stdscr, TRUE);
    curs_set(0);
    return std::unique_ptr<CursesScreen>(new CursesScreen(screen));
  }
  ~CursesScreen() {
    endwin();
    delscreen(screen_);
  }
  CursesScreen(const CursesScreen&) = delete;
  CursesScreen& operator=(const CursesScreen&) = delete;

  std::size_t rows() const { return static_cast<std::size_t>(std::max(getmaxy(stdscr), 0)); }
  std::size_t cols() const { return static_cast<std::size_t>(std::max(getmaxx(stdscr), 0)); }

  void draw(const std::vector<ScreenLine>& lines) {
    werase(stdscr);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const attr_t attr = lines[i].style == LineStyle::reverse ? A_REVERSE
                          : lines[i].style == LineStyle::bold  ? A_BOLD
                                                               : A_NORMAL;
      wattrset(stdscr, attr);
      // Fitted to the width: nothing wraps. The last cell of the last line
      // "fails" (the cursor cannot move past it) but is drawn.
      mvwaddstr(stdscr, static_cast<int>(i), 0, lines[i].text.c_str());
    }
    wattrset(stdscr, A_NORMAL);
    wrefresh(stdscr);
  }

 private:
  explicit CursesScreen(SCREEN* screen) : screen_(screen) {}
  SCREEN* screen_;
};

std::size_t terminal_rows() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return ws.ws_row;
  return 24;
}

Result<nlohmann::json> ask_top(const LiveTopOptions& options, control::TopSort sort,
                               std::size_t screen_rows, bool& unreachable) {
  std::size_t n = std::min<std::size_t>(top_screen_rows(screen_rows), control::kTopN.max);
  if (options.max_rows > 0) n = std::min(n, static_cast<std::size_t>(options.max_rows));
  const std::string request = control::make_request(
      "top", {{"n", n}, {"by", options.by}, {"sort", control::top_sort_name(sort)}});
  return call(options.socket, request, kRequestTimeout, unreachable);
}

std::string footer(const nlohmann::json& top) {
  // The sort tallyd applied: one that predates sorting says none, and sorts by CPU.
  std::string sorted = lenient::str(top, "sort");
  if (sorted.empty()) sorted = "cpu";
  for (char& c : sorted) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string keys;
  for (const SortKey& k : kSortKeys) keys += fmt::format("  {} {}", k.key, k.label);
  return fmt::format(" sort {}   q quit{}  space refresh", sorted, keys);
}

// When to ask next: just after tallyd's next sample is due, and at least
// every interval; every kRetryEvery while it does not answer.
Clock::time_point next_refresh(const nlohmann::json& top, bool answered) {
  const auto now = Clock::now();
  if (!answered) return now + kRetryEvery;
  const std::chrono::seconds interval(std::max<std::uint64_t>(lenient::u64(top, "interval_s"), 1));
  const std::uint64_t ts_ns = lenient::u64(top, "ts_ns");
  if (ts_ns == 0) return now + 1s;  // no sample yet
  const std::int64_t since_ns =
      static_cast<std::int64_t>(realtime_ns()) - static_cast<std::int64_t>(ts_ns);
  auto wait = std::chrono::duration_cast<Clock::duration>(interval + kSampleSettle -
                                                          std::chrono::nanoseconds(since_ns));
  wait = std::clamp<Clock::duration>(wait, 500ms, interval);
  return now + wait;
}

enum class Wake { refresh, quit };

// Sleeps in getch until `deadline`, a key that asks for new rows, a resize
// or a signal. Sort keys set `sort`.
Wake wait_for_key(Clock::time_point deadline, control::TopSort& sort) {
  while (g_signal == 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wake::refresh;
    // At most a second per wait: a signal that the read restarted after is
    // still seen promptly.
    wtimeout(stdscr, static_cast<int>(std::min<long long>(left, 1000)));
    const int ch = wgetch(stdscr);
    if (ch == ERR) continue;
    if (ch == 'q' || ch == 'Q') return Wake::quit;
    if (ch == KEY_RESIZE || ch == ' ') return Wake::refresh;
    for (const SortKey& k : kSortKeys) {
      if (ch < 256 && std::toupper(ch) == k.key) {
        sort = k.sort;
        return Wake::refresh;
      }
    }
  }
  return Wake::quit;
}

}  // namespace

LiveTopOutcome run_live_top(const LiveTopOptions& options) {
  LiveTopOutcome outcome;
  control::TopSort sort = options.sort;
  bool unreachable = false;
  auto first = ask_top(options, sort, terminal_rows(), unreachable);
  if (!first.ok()) {
    outcome.exit_code = unreachable ? 2 : 1;
    outcome.error = first.error().message();
    return outcome;
  }
  nlohmann::json shown = std::move(*first);
  std::string problem;

  catch_signals();
  std::setlocale(LC_CTYPE, "");  // ncursesw draws UTF-8 only in a UTF-8 locale
  // Inside the try, so that the screen is ended (endwin) before anything
  // thrown leaves: the terminal is never left in curses' modes.
  try {
    auto screen = CursesScreen::open();
    if (!screen) {
      outcome.no_terminal = true;
      return outcome;
    }
    for (;;) {
      screen->draw(top_screen(shown, problem, footer(shown), screen->cols(), screen->rows()));
      if (wait_for_key(next_refresh(shown, problem.empty()), sort) == Wake::quit) break;
      auto r = ask_top(options, sort, screen->rows(), unreachable);
      if (r.ok()) {
        shown = std::move(*r);
        problem.clear();
      } else {
        problem =
            fmt::format("tallyd not answering, retrying every {} s (q quits): {}",
                        std::chrono::seconds(kRetryEvery).count(), printable(r.error().message()));
      }
    }
  } catch (const std::exception& e) {
    outcome.exit_code = 1;
    outcome.error = std::string("live screen: ") + e.what();
    return outcome;
  }
  outcome.exit_code = g_signal == 0 || g_signal == SIGINT ? 0 : 128 + g_signal;
  return outcome;
}

}  // namespace tally::cli
