// printable() and the renderers: what tally shows of tallyd's answers.
#include "cli/terminal_text.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/render.h"
#include "tally/utf8.h"

namespace tally::cli {
namespace {

TEST(Printable, ShowsControlsAsEscapes) {
  EXPECT_EQ(printable("\x1b]0;PWNED\x07\x1b[2J"), R"(\x1b]0;PWNED\x07\x1b[2J)");
  EXPECT_EQ(printable(std::string("nul\0tab\tnl\ncr\rdel\x7f", 18)),
            R"(nul\x00tab\x09nl\x0acr\x0ddel\x7f)");
  EXPECT_EQ(printable("csi\xc2\x9b"
                      "31m nel\xc2\x85"),
            R"(csi\u009b31m nel\u0085)");
  EXPECT_EQ(printable("\xe2\x80\xae"
                      "exe.txt \xe2\x81\xa6x\xe2\x81\xa9 \xd8\x9c"),
            R"(\u202eexe.txt \u2066x\u2069 \u061c)");
}

TEST(Printable, ShowsBytesThatAreNotUtf8AsEscapes) {
  EXPECT_EQ(printable("a\xff\xfe"
                      "b"),
            R"(a\xff\xfeb)");
  EXPECT_EQ(printable("\xc3"), R"(\xc3)");                  // cut short
  EXPECT_EQ(printable("\xc0\xaf"), R"(\xc0\xaf)");          // overlong
  EXPECT_EQ(printable("\xed\xa0\x80"), R"(\xed\xa0\x80)");  // surrogate
}

TEST(Printable, LeavesOrdinaryTextAlone) {
  const std::string text =
      "nginx: worker process /usr/bin/python3 -c 'print(1)' \\x1b café 東京 🙂";
  EXPECT_EQ(printable(text), text);
}

TEST(Render, TakesAnyJsonWithoutThrowing) {
  for (const char* text :
       {"null", "[]", "42", R"({"health":[],"sinks":{},"outbox":"x"})",
        R"({"processes":[null,{"pid":-1,"cpu_pct":"x","comm":7}]})", R"({"self":{"pid":1e300}})"}) {
    SCOPED_TRACE(text);
    const auto j = nlohmann::json::parse(text, nullptr, false);
    EXPECT_NO_THROW(render_status(j, 0));
    EXPECT_NO_THROW(render_top(j, 10));
    EXPECT_NO_THROW(render_flush(j));
    EXPECT_FALSE(reports_healthy(j));
    EXPECT_FALSE(flush_emptied(j));
  }
}

TEST(Render, ASinkThatRefusedOldDataSaysHowManyAndTheServersWordsSafely) {
  const nlohmann::json status = {{"sinks",
                                  {{{"name", "prom"},
                                    {"format", "remote_write"},
                                    {"url", "http://prom:9090/api/v1/write"},
                                    {"state", "healthy"},
                                    {"samples_rejected", std::uint64_t{120}},
                                    {"old_samples_refused", std::uint64_t{120}},
                                    {"old_data_refused_ns", std::uint64_t{1'000'000'000}},
                                    {"old_data_reason", "HTTP 400: out of bounds\x1b[2J"}}}}};
  const std::string out = render_status(status, 61'000'000'000);
  EXPECT_NE(out.find("120 samples refused as too old 1 min ago: HTTP 400: out of bounds\\x1b[2J"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
}

TEST(Render, JsonOutputIsAsciiAndValid) {
  const nlohmann::json r = {{"comm", "\x1b[2J\xc2\x9b\x7f caf\xc3\xa9"}};
  const std::string out = render_json(r);
  for (unsigned char c : out) EXPECT_LT(c, 0x80);
  EXPECT_EQ(nlohmann::json::parse(out), r);
}

// The one cut that tallyd's summaries, the control protocol's error
// messages and the CLI's columns share.
TEST(Utf8CutLength, NeverEndsInsideASequence) {
  const std::string euro = "ab\xE2\x82\xAC";  // "ab€": 5 bytes
  EXPECT_EQ(utf8_cut_length(euro, 10), 5u);
  EXPECT_EQ(utf8_cut_length(euro, 5), 5u);
  EXPECT_EQ(utf8_cut_length(euro, 4), 2u);
  EXPECT_EQ(utf8_cut_length(euro, 3), 2u);
  EXPECT_EQ(utf8_cut_length(euro, 2), 2u);
  EXPECT_EQ(utf8_cut_length(euro, 0), 0u);
  EXPECT_EQ(utf8_cut_length("\x80\x80\x80", 2), 0u);  // stray continuation bytes
}

}  // namespace
}  // namespace tally::cli
