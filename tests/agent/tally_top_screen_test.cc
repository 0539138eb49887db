// `tally top` on a terminal, as a person uses it: tmux runs it against a
// real tallyd (real BPF) with a known burner, capture-pane reads the
// screen, send-keys presses the keys. Every wait polls the screen (or a
// file) until what is expected shows, or a deadline passes.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "subprocess.h"
#include "tallyd_run.h"
#include "temp_dir.h"

namespace tally::test::top_screen {

using namespace std::chrono_literals;
using Screen = std::vector<std::string>;

constexpr const char* kTmux = "/usr/bin/tmux";

// Display columns of a captured line (one per character: the pane's
// locale is C, so tally shows non-ASCII as '?').
std::size_t columns(const std::string& line) {
  std::size_t n = 0;
  for (unsigned char c : line) n += (c & 0xC0) != 0x80;
  return n;
}

std::string joined(const Screen& screen) {
  std::string out;
  for (const auto& line : screen) out += line + "\n";
  return out;
}

// A detached tmux session of a fixed size running one shell command, on a
// server of its own (its socket in `dir`, never one a killed server may
// still be leaving), killed at the end.
class TmuxPane {
 public:
  TmuxPane(const TempDir& dir, int cols, int rows, const std::string& command)
      : socket_(dir / ("tmux-" + std::to_string(++servers_) + ".sock")) {
    const RunResult r = tmux({"-f", "/dev/null", "new-session", "-d", "-x", std::to_string(cols),
                              "-y", std::to_string(rows), "-s", "top", command});
    started_ = r.exit_code == 0;
    start_error_ = r.err;
  }
  ~TmuxPane() { tmux({"kill-server"}); }
  TmuxPane(const TmuxPane&) = delete;
  TmuxPane& operator=(const TmuxPane&) = delete;

  bool started() const { return started_; }
  const std::string& start_error() const { return start_error_; }

  // The visible screen, one string per line without trailing blanks; -J
  // joins lines the terminal wrapped, so a wrapped line shows as one wider
  // than the pane.
  Screen screen() const {
    const RunResult r = tmux({"capture-pane", "-p", "-J", "-t", "top"});
    Screen lines;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      line.erase(line.find_last_not_of(' ') + 1);  // -J keeps trailing blanks
      lines.push_back(line);
    }
    return lines;
  }

  void keys(const std::string& keys) const { tmux({"send-keys", "-t", "top", keys}); }
  void resize(int cols, int rows) const {
    tmux({"resize-window", "-t", "top", "-x", std::to_string(cols), "-y", std::to_string(rows)});
  }

  // Polls the screen until `holds` says yes; the screen then, or nullopt
  // (and the last screen in `last`) at the deadline.
  std::optional<Screen> wait_for(const std::function<bool(const Screen&)>& holds,
                                 std::chrono::seconds timeout, Screen* last = nullptr) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      Screen s = screen();
      if (holds(s)) return s;
      if (last != nullptr) *last = s;
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(100ms);
    }
  }

 private:
  RunResult tmux(std::vector<std::string> args) const {
    std::vector<std::string> argv{kTmux, "-S", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, 10s);
  }

  static inline int servers_ = 0;
  std::string socket_;
  bool started_ = false;
  std::string start_error_;
};

// The file's contents once it holds a whole line, or nullopt at the deadline.
std::optional<std::string> wait_for_file(const std::string& path, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find('\n') != std::string::npos) return text.str();
    std::this_thread::sleep_for(100ms);
  }
  return std::nullopt;
}

// What the live screen shows, read back from its lines.
struct TopView {
  std::size_t title = 0;          // the column titles' line
  std::vector<std::string> rows;  // process rows under it
  std::vector<unsigned> pids;
  std::string footer;  // the keys line, at the bottom
};

std::optional<TopView> read_top(const Screen& screen) {
  TopView v;
  for (v.title = 0; v.title < screen.size(); ++v.title) {
    const std::string& l = screen[v.title];
    if (l.find("PID") != std::string::npos && l.find("COMMAND") != std::string::npos) break;
  }
  if (v.title == screen.size()) return std::nullopt;
  for (std::size_t i = v.title + 1; i < screen.size() && !screen[i].empty(); ++i) {
    if (screen[i].rfind(" sort ", 0) == 0) break;
    v.rows.push_back(screen[i]);
    v.pids.push_back(static_cast<unsigned>(std::strtoul(screen[i].c_str(), nullptr, 10)));
  }
  for (auto it = screen.rbegin(); it != screen.rend(); ++it) {
    if (it->rfind(" sort ", 0) == 0) {
      v.footer = *it;
      break;
    }
  }
  return v;
}

bool burner_first(const Screen& s, pid_t burner) {
  const auto v = read_top(s);
  return v && !v->pids.empty() && v->pids[0] == static_cast<unsigned>(burner);
}

// A tallyd sampling every second whose one sink is refused (port 1), so
// that the header has a sink state to show; on SIGTERM it leaves at once.
struct Agent {
  TallydRun run{{"--interval", "1", "--endpoint", "http://127.0.0.1:1/v1/batches",
                 "--shutdown-timeout", "0"}};
  std::string socket = run.dir() / "tally.sock";
  bool ready() { return run.wait_ready("control socket"); }
};

class TallyTopScreen : public ::testing::Test {
 protected:
  void SetUp() override {
    TALLY_REQUIRE_BPF();
    ASSERT_TRUE(std::filesystem::exists(kTmux)) << "no tmux: scripts/bootstrap installs it";
  }

  // `tally top ARGS` in a shell that then writes its exit code to exit_file
  // and its terminal's settings to stty_file, and stays a while. Should the
  // test die before it kills the tmux server, all of it still ends within
  // minutes (timeout --foreground: tally stays in the terminal's foreground
  // process group, so it reads keys and gets Ctrl-C).
  std::string command(const std::string& socket, const std::string& args) const {
    return "timeout --foreground 120 " + std::string(TALLY_CLI_PATH) + " top --socket " + socket +
           " " + args + "; echo $? > " + exit_file + "; stty -a > " + stty_file +
           "; exec sleep 120";
  }

  TempDir dir;
  std::string exit_file = dir / "exit";
  std::string stty_file = dir / "stty";
};

TEST_F(TallyTopScreen, ShowsTheBurnerFirstFitsThePaneSortsByKeyAndQuitsWithZero) {
  Agent a;
  ASSERT_TRUE(a.ready()) << a.run.process().stderr_text();
  // Three threads: first by CPU even beside other processes that keep a
  // CPU busy (a compiler of a parallel build).
  Subprocess burner({BURNER_PATH, "threads", "3", "120000"});
  const std::string burner_cmdline = std::string(BURNER_PATH) + " threads 3 120000";
  TmuxPane pane(dir, 100, 30, command(a.socket, ""));
  ASSERT_TRUE(pane.started()) << pane.start_error();

  Screen last;
  auto screen =
      pane.wait_for([&](const Screen& s) { return burner_first(s, burner.pid()); }, 30s, &last);
  ASSERT_TRUE(screen) << "the burner never showed on the first row:\n" << joined(last);
  for (const auto& line : *screen) EXPECT_LE(columns(line), 100u) << line;
  EXPECT_NE(read_top(*screen)->footer.find("sort CPU"), std::string::npos) << joined(*screen);
  EXPECT_NE(read_top(*screen)->footer.find("q quit"), std::string::npos) << joined(*screen);

  // The header: host CPU, processes, outbox depth and the sink's state,
  // which turns to failing (nothing listens on port 1), and the health.
  const std::regex figures(
      R"(^cpu \d+\.\d% of \d+ CPUs  processes \d+  outbox \d+ pending  sink default (idle|healthy|failing)$)");
  EXPECT_TRUE(std::regex_match((*screen)[1], figures)) << joined(*screen);
  screen = pane.wait_for(
      [](const Screen& s) {
        return s.size() > 1 && s[1].find("sink default failing") != std::string::npos &&
               s[0].find("tallyd DEGRADED: sink default failing") != std::string::npos;
      },
      30s, &last);
  ASSERT_TRUE(screen) << "the header never said the sink fails:\n" << joined(last);

  // N: lowest pid first, whatever their CPU.
  pane.keys("N");
  screen = pane.wait_for(
      [](const Screen& s) {
        const auto v = read_top(s);
        return v && v->footer.find("sort PID") != std::string::npos && v->pids.size() >= 3 &&
               std::is_sorted(v->pids.begin(), v->pids.end());
      },
      10s, &last);
  ASSERT_TRUE(screen) << "N did not sort by pid:\n" << joined(last);
  // P: back to CPU, the burner first again.
  pane.keys("P");
  screen = pane.wait_for(
      [&](const Screen& s) {
        return burner_first(s, burner.pid()) &&
               read_top(s)->footer.find("sort CPU") != std::string::npos;
      },
      10s, &last);
  ASSERT_TRUE(screen) << "P did not sort by CPU again:\n" << joined(last);

  // A narrow pane: every line cut to it, the CONTAINER column gone, and
  // the burner's command line cut (its tail on no line), not wrapped.
  pane.resize(60, 30);
  screen = pane.wait_for(
      [&](const Screen& s) {
        const auto v = read_top(s);
        if (!v || v->rows.empty() || s[v->title].find("CONTAINER") != std::string::npos) {
          return false;
        }
        return burner_first(s, burner.pid());
      },
      10s, &last);
  ASSERT_TRUE(screen) << "no narrow screen with the burner first:\n" << joined(last);
  for (const auto& line : *screen) {
    EXPECT_LE(columns(line), 60u) << line;
    EXPECT_EQ(line.find("threads 3 120000"), std::string::npos) << line;
  }
  const std::string row = read_top(*screen)->rows[0];
  const std::size_t start = row.find('/');
  ASSERT_NE(start, std::string::npos) << row;
  const std::string shown = row.substr(start);
  EXPECT_GT(shown.size(), 0u);
  EXPECT_LT(shown.size(), burner_cmdline.size());
  EXPECT_EQ(burner_cmdline.rfind(shown, 0), 0u)
      << shown << " is not the start of " << burner_cmdline;

  pane.keys("q");
  const auto code = wait_for_file(exit_file, 10s);
  ASSERT_TRUE(code) << "tally top did not exit on q:\n" << joined(pane.screen());
  EXPECT_EQ(*code, "0\n");
}

TEST_F(TallyTopScreen, CtrlCExitsWithZeroAndLeavesTheTerminalAsItWas) {
  Agent a;
  ASSERT_TRUE(a.ready()) << a.run.process().stderr_text();
  TmuxPane pane(dir, 80, 24, command(a.socket, "--sort rss"));
  ASSERT_TRUE(pane.started()) << pane.start_error();
  Screen last;
  ASSERT_TRUE(pane.wait_for(
      [](const Screen& s) {
        const auto v = read_top(s);
        return v && !v->rows.empty() && v->footer.find("sort RSS") != std::string::npos;
      },
      20s, &last))
      << joined(last);

  pane.keys("C-c");
  const auto code = wait_for_file(exit_file, 10s);
  ASSERT_TRUE(code) << "tally top did not exit on Ctrl-C:\n" << joined(pane.screen());
  EXPECT_EQ(*code, "0\n");
  // Line editing and echo are back, and the screen tally drew is gone (the
  // alternate screen was left).
  const auto stty = wait_for_file(stty_file, 10s);
  ASSERT_TRUE(stty);
  std::istringstream words(*stty);
  std::vector<std::string> flags{std::istream_iterator<std::string>(words), {}};
  for (const char* on : {"icanon", "echo", "isig", "icrnl", "opost"}) {
    EXPECT_NE(std::find(flags.begin(), flags.end(), on), flags.end()) << on << " off:\n" << *stty;
  }
  EXPECT_EQ(joined(pane.screen()).find("COMMAND"), std::string::npos) << joined(pane.screen());
}

TEST_F(TallyTopScreen, SaysWhenTallydStopsAnsweringAndKeepsRunningUntilQ) {
  Agent a;
  ASSERT_TRUE(a.ready()) << a.run.process().stderr_text();
  TmuxPane pane(dir, 100, 24, command(a.socket, ""));
  ASSERT_TRUE(pane.started()) << pane.start_error();
  Screen last;
  ASSERT_TRUE(pane.wait_for([](const Screen& s) { return read_top(s).has_value(); }, 20s, &last))
      << joined(last);

  ASSERT_EQ(a.run.stop(), 0);
  ASSERT_TRUE(pane.wait_for(
      [](const Screen& s) { return joined(s).find("tallyd not answering") != std::string::npos; },
      20s, &last))
      << joined(last);
  // Still drawing: the last rows it got stay under the message.
  EXPECT_TRUE(read_top(last).has_value() || read_top(pane.screen()).has_value());

  pane.keys("q");
  const auto code = wait_for_file(exit_file, 10s);
  ASSERT_TRUE(code) << joined(pane.screen());
  EXPECT_EQ(*code, "0\n");
}

TEST_F(TallyTopScreen, OnceOnATerminalPrintsOnceAndNoDaemonExitsTwo) {
  Agent a;
  ASSERT_TRUE(a.ready()) << a.run.process().stderr_text();
  {
    TmuxPane pane(dir, 80, 24, command(a.socket, "--once -n 3"));
    ASSERT_TRUE(pane.started()) << pane.start_error();
    const auto code = wait_for_file(exit_file, 20s);
    ASSERT_TRUE(code) << joined(pane.screen());
    EXPECT_EQ(*code, "0\n");
    const Screen s = pane.screen();
    const auto v = read_top(s);
    ASSERT_TRUE(v) << joined(s);
    EXPECT_EQ(v->footer, "") << joined(s);  // no live screen
    EXPECT_LE(v->rows.size(), 3u) << joined(s);
    for (const auto& line : s) EXPECT_LE(columns(line), 80u) << line;
  }
  std::filesystem::remove(exit_file);
  TmuxPane pane(dir, 80, 24, command(dir / "absent.sock", ""));
  ASSERT_TRUE(pane.started()) << pane.start_error();
  const auto code = wait_for_file(exit_file, 20s);
  ASSERT_TRUE(code) << joined(pane.screen());
  EXPECT_EQ(*code, "2\n");
  EXPECT_NE(joined(pane.screen()).find("Is tallyd running"), std::string::npos)
      << joined(pane.screen());
}

}  // namespace tally::test::top_screen
