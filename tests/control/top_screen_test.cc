// The live `tally top` screen's lines, without a terminal: they fit the
// width whatever tallyd sent, and the header says how tallyd is.
#include "cli/top_screen.h"

#include <clocale>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tally::cli::top_screen_test {

// Display columns of UTF-8 text in which every character is one column
// wide (what these tests draw).
std::size_t columns(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// As the CLI gets it: parsed from the wire, so whole numbers are unsigned.
nlohmann::json wire(const nlohmann::json& j) { return nlohmann::json::parse(j.dump()); }

nlohmann::json answer(std::string cmdline) {
  return wire({{"ts_ns", 1'700'000'000'000'000'000ULL},
               {"interval_s", 1},
               {"by", "process"},
               {"sort", "cpu"},
               {"processes",
                {{{"pid", 4242},
                  {"comm", "spin\x1b[2J"},
                  {"cmdline", std::move(cmdline)},
                  {"container", "web.service"},
                  {"cpu_pct", 99.5},
                  {"wait_pct", 0.5},
                  {"rss_bytes", 1048576}}}},
               {"host", {{"cpu_pct", 50.2}, {"ncpu", 2}, {"processes", 17}}},
               {"agent",
                {{"host", "web-1"},
                 {"health", "degraded"},
                 {"reasons", 2},
                 {"first_reason", "sink vm failing: connection refused"},
                 {"outbox", {{"pending_batches", 7}}},
                 {"sinks", {{{"name", "vm"}, {"state", "failing"}}}}}}});
}

TEST(TopScreen, EveryLineFitsTheWidthAndTheCommandLineIsCut) {
  const std::string cmdline = "/usr/bin/spin " + std::string(300, 'x');
  for (std::size_t cols : {20, 60, 80, 99, 100, 200}) {
    SCOPED_TRACE(cols);
    const auto lines = top_screen(answer(cmdline), "", "keys", cols, 12);
    ASSERT_EQ(lines.size(), 12u);
    for (const auto& l : lines) {
      EXPECT_LE(columns(l.text), cols) << l.text;
      if (l.style == LineStyle::reverse) {
        EXPECT_EQ(columns(l.text), cols) << l.text;
      }
      EXPECT_EQ(l.text.find('\x1b'), std::string::npos) << l.text;
    }
    // Column titles, then the row: the command line's start, cut.
    EXPECT_NE(lines[3].text.find("PID"), std::string::npos);
    EXPECT_NE(lines[4].text.find("4242"), std::string::npos) << lines[4].text;
    EXPECT_EQ(lines[11].text.substr(0, 4), "keys");
  }
  // Narrow: the CONTAINER column goes, so the command line keeps room.
  EXPECT_EQ(top_screen(answer(cmdline), "", "", 80, 12)[4].text.find("web.service"),
            std::string::npos);
  EXPECT_NE(top_screen(answer(cmdline), "", "", 80, 12)[4].text.find("/usr/bin/spin"),
            std::string::npos);
  EXPECT_NE(top_screen(answer(cmdline), "", "", 100, 12)[4].text.find("web.service"),
            std::string::npos);
}

TEST(TopScreen, TheHeaderSaysHowTallydIs) {
  const auto lines = top_screen(answer("spin"), "tallyd not answering", "", 120, 10);
  EXPECT_NE(lines[0].text.find("web-1: tallyd DEGRADED: sink vm failing: connection refused "
                               "(+1 more: tally status), every 1 s"),
            std::string::npos)
      << lines[0].text;
  EXPECT_EQ(lines[0].style, LineStyle::bold);
  EXPECT_EQ(lines[1].text, "cpu 50.2% of 2 CPUs  processes 17  outbox 7 pending  sink vm failing");
  EXPECT_EQ(lines[2].text, "tallyd not answering");

  // Before the first interval, and with no sink.
  const nlohmann::json fresh =
      wire({{"interval_s", 60},
            {"agent", {{"health", "healthy"}, {"outbox", {{"pending_batches", 0}}}}}});
  const auto first = top_screen(fresh, "", "", 120, 10);
  EXPECT_EQ(first[0].text, "tallyd HEALTHY, every 60 s");
  EXPECT_EQ(first[1].text,
            "no interval sampled yet  outbox 0 pending  no sink (samples stay in the outbox)");
}

TEST(TopScreen, AScreenTooShortKeepsTheTopLinesAndAskingNeverGoesBelowOneRow) {
  EXPECT_EQ(top_screen(answer("spin"), "", "keys", 80, 3).size(), 3u);
  EXPECT_EQ(top_screen_rows(3), 1u);
  EXPECT_EQ(top_screen_rows(30), 25u);
  EXPECT_TRUE(top_screen(nlohmann::json("not an object"), "", "", 0, 0).empty());
}

TEST(FitColumns, CutsByDisplayColumnsNeverInsideACharacter) {
  EXPECT_EQ(fit_columns("abcdef", 3), "abc");
  EXPECT_EQ(fit_columns("ab", 4, true), "ab  ");
  // The C locale knows no UTF-8: non-ASCII shows as '?', one column each byte.
  std::setlocale(LC_CTYPE, "C");
  EXPECT_EQ(fit_columns("caf\xc3\xa9.", 10), "caf??.");
  if (std::setlocale(LC_CTYPE, "C.UTF-8") != nullptr) {
    EXPECT_EQ(fit_columns("caf\xc3\xa9.", 4), "caf\xc3\xa9");
    // A wide character (2 columns) that would pass the edge is left out.
    EXPECT_EQ(fit_columns("ab\xe4\xb8\xad", 3, true), "ab ");
    EXPECT_EQ(fit_columns("ab\xe4\xb8\xad", 4), "ab\xe4\xb8\xad");
    std::setlocale(LC_CTYPE, "C");
  }
}

}  // namespace tally::cli::top_screen_test
