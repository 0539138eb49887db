// A process named with escape sequences must not reach the terminal of
// whoever runs `tally top` or `tally status`: a real process renamed with
// prctl(PR_SET_NAME), a real tallyd, the real CLI; every byte it prints is
// checked.
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tally/utf8.h"
#include "tally_cli.h"
#include "tallyd_run.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;

// Where a terminal would act on the text or show it other than as written:
// C0 controls but the newline, DEL, C1 controls (U+0080 to U+009F),
// bidirectional controls, bytes that are not UTF-8. "" when there is none.
std::string first_unsafe(const std::string& out) {
  for (std::size_t i = 0; i < out.size();) {
    const std::size_t n = utf8_sequence_length(out, i);
    const auto b = static_cast<unsigned char>(out[i]);
    const auto next = [&](std::size_t k) { return static_cast<unsigned char>(out[i + k]); };
    const bool bad =
        n == 0 || (b < 0x20 && b != '\n') || b == 0x7F ||
        (n == 2 && b == 0xC2 && next(1) <= 0x9F) ||
        (n == 3 && b == 0xE2 && next(1) == 0x80 && next(2) >= 0xAA && next(2) <= 0xAE) ||
        (n == 3 && b == 0xE2 && next(1) == 0x81 && next(2) >= 0xA6 && next(2) <= 0xA9);
    if (bad) return "byte " + std::to_string(i) + " in: " + out.substr(i > 40 ? i - 40 : 0, 80);
    i += n;
  }
  return {};
}

const std::string kComm = "\x1b]0;PWNED\x07\x1b[2J";  // 15 bytes: all of comm

class CliEscapes : public ::testing::Test {
 protected:
  void SetUp() override { TALLY_REQUIRE_BPF(); }
};

TEST_F(CliEscapes, TopShowsEscapesNotTheControlCharactersAProcessChose) {
  TallydRun agent({"--interval", "1"});
  ASSERT_TRUE(agent.wait_ready("control socket")) << agent.process().stderr_text();
  const std::string socket = agent.dir() / "tally.sock";
  // comm from prctl; the cmdline carries C1, bidi and invalid UTF-8 too.
  Subprocess named({BURNER_PATH, "named", kComm, "30",
                    "csi\xc2\x9b"
                    "31m",
                    "\xe2\x80\xae"
                    "fdp.exe",
                    "bad\xff\xfe", "tab\tnewline\nbell\a", "del\x7f"});

  nlohmann::json mine;
  for (int i = 0; i < 100 && mine.is_null(); ++i) {
    auto r = run_tally(socket, {"top", "-n", "200", "--json"}, 30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // --json: valid JSON, and ASCII only, so safe on a terminal as well.
    EXPECT_EQ(first_unsafe(r.out), "");
    for (unsigned char ch : r.out) ASSERT_LT(ch, 0x80) << r.out;
    const auto top = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(top.is_discarded()) << r.out;
    for (const auto& p : top["processes"]) {
      if (p["pid"].get<pid_t>() == named.pid()) mine = p;
    }
    if (mine.is_null()) std::this_thread::sleep_for(200ms);
  }
  ASSERT_FALSE(mine.is_null()) << "the renamed burner never showed in tally top";
  EXPECT_EQ(mine["comm"], kComm);  // the JSON keeps the name exactly

  const auto text = run_tally(socket, {"top", "-n", "200"}, 30s);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_EQ(first_unsafe(text.out), "");
  EXPECT_NE(text.out.find(R"(\x1b]0;PWNED\x07\x1b[2J)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(R"(csi\u009b31m)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(R"(\u202efdp.exe)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(R"(tab\x09newline\x0abell\x07)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(R"(del\x7f)"), std::string::npos) << text.out;
}

TEST_F(CliEscapes, StatusAndErrorsShowEscapesToo) {
  TempDir dir;
  // Paths and URLs the daemon reports back: the outbox path and a sink URL.
  const std::string outbox = dir / "out\x1b[2Jbox\x1b]0;PWNED\x07.db";
  TallydRun agent({"--interval", "1", "--outbox", outbox, "--endpoint",
                   "http://127.0.0.1:9/v1/batches?x=\x1b[31m", "--connect-timeout", "1"});
  ASSERT_TRUE(agent.wait_ready("control socket")) << agent.process().stderr_text();
  const std::string socket = agent.dir() / "tally.sock";

  const auto text = run_tally(socket, {"status"}, 30s);
  ASSERT_NE(text.exit_code, 2) << text.err;
  EXPECT_EQ(first_unsafe(text.out), "");
  EXPECT_NE(text.out.find(R"(out\x1b[2Jbox\x1b]0;PWNED\x07.db)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(R"(x=\x1b[31m)"), std::string::npos) << text.out;

  const auto json = run_tally(socket, {"status", "--json"}, 30s);
  EXPECT_EQ(first_unsafe(json.out), "");
  const auto status = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(status.is_discarded()) << json.out;
  EXPECT_EQ(status["outbox"]["path"], outbox);

  // An error naming a path the operator gave: shown escaped as well.
  const auto err = run_tally(dir / "no\x1b[2Jsuch.sock", {"status"}, 30s);
  EXPECT_EQ(err.exit_code, 2);
  EXPECT_EQ(first_unsafe(err.err), "");
  EXPECT_NE(err.err.find(R"(no\x1b[2Jsuch.sock)"), std::string::npos) << err.err;
}

}  // namespace
}  // namespace tally::test
