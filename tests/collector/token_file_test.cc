// The token file's format: what it accepts, and that every bad line is an
// error naming the file and line without quoting the token.
#include "collector/token_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "collector_test_support.h"

namespace tally::collector {
namespace {

std::vector<TokenLine> parsed(std::string_view text) {
  auto lines = parse_token_file(text, "/etc/tally/tokens");
  if (!lines.ok()) {
    ADD_FAILURE() << lines.error().message();
    return {};
  }
  return *lines;
}

TEST(TokenFile, ReadsNamedAndBareTokensBetweenCommentsAndBlankLines) {
  auto lines = parsed(
      "# tally-collector tokens\n"
      "\n"
      "web-1  9f86d081884c7d659a2feaa0c55ad015\n"
      "\t# indented comment\n"
      "web-2\t2c26b46b68ffc68ff99b453c1d304134   \n"
      "   3e23e8160039594a33894f6564e1b134\n");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].name, "web-1");
  EXPECT_EQ(lines[0].token, "9f86d081884c7d659a2feaa0c55ad015");
  EXPECT_EQ(lines[0].line, 3u);
  EXPECT_EQ(lines[1].name, "web-2");
  EXPECT_EQ(lines[1].token, "2c26b46b68ffc68ff99b453c1d304134");
  EXPECT_EQ(lines[2].name, std::nullopt);
  EXPECT_EQ(lines[2].token, "3e23e8160039594a33894f6564e1b134");
  EXPECT_EQ(lines[2].line, 6u);
}

TEST(TokenFile, TheSingleTokenFileOfEarlierCollectorsIsStillValid) {
  for (std::string_view text : {"s3cret-token", "  s3cret-token\n\n", "s3cret-token\r\n"}) {
    auto lines = parsed(text);
    ASSERT_EQ(lines.size(), 1u) << text;
    EXPECT_EQ(lines[0].token, "s3cret-token");
    EXPECT_EQ(lines[0].name, std::nullopt);
  }
}

TEST(TokenFile, ANameMayHaveSeveralTokensForRotation) {
  auto lines = parsed("db-7 old-token-aaaaaaaa\ndb-7 new-token-bbbbbbbb\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].name, lines[1].name);
}

TEST(TokenFile, TokensMayHoldAnyPrintableCharacter) {
  auto lines = parsed("n p@ss/w0rd+=!#~\"x\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].token, "p@ss/w0rd+=!#~\"x") << "'#' starts a comment only at a line's start";
}

struct BadFile {
  std::string name;
  std::string text;
  std::string error;  // the whole message
};

void PrintTo(const BadFile& b, std::ostream* os) { *os << b.name; }

class TokenFileRejects : public ::testing::TestWithParam<BadFile> {};

// The secret part of every line of the table: it must never be echoed.
constexpr std::string_view kSecret = "Zq8sEcReT";

TEST_P(TokenFileRejects, NamingTheFileAndLineButNeverTheToken) {
  auto lines = parse_token_file(GetParam().text, "/etc/tally/tokens");
  ASSERT_FALSE(lines.ok());
  EXPECT_EQ(lines.error().message(), GetParam().error);
  EXPECT_EQ(lines.error().message().find(kSecret), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Table, TokenFileRejects,
    ::testing::Values(
        BadFile{"ThreeFields", "# c\nweb-1 Zq8sEcReT trailing\n",
                "/etc/tally/tokens:2: expected TOKEN or NAME TOKEN, found 3 fields"},
        BadFile{"TrailingComment", "web-1 Zq8sEcReT # the web host\n",
                "/etc/tally/tokens:1: expected TOKEN or NAME TOKEN, found 6 fields"},
        BadFile{"BadNameCharacter", "ok aaaaaaaaaaaaaaaa\nweb/1 Zq8sEcReT\n",
                "/etc/tally/tokens:2: the name has a character other than letters, digits and "
                ". _ : @ - (column 4)"},
        BadFile{"NameTooLong", std::string(129, 'n') + " Zq8sEcReT\n",
                "/etc/tally/tokens:1: the name is longer than 128 characters"},
        BadFile{"ControlByteInToken", "web-1 Zq8sEcReT\x01x\n",
                "/etc/tally/tokens:1: a byte that is not printable ASCII (0x01) at column 16"},
        BadFile{"NonAsciiToken", "web-1 Zq8sEcReT\xc3\xa9\n",
                "/etc/tally/tokens:1: a byte that is not printable ASCII (0xc3) at column 16"},
        BadFile{"TokenTooLong", "web-1 Zq8sEcReT" + std::string(1100, 'x') + "\n",
                "/etc/tally/tokens:1: the token is longer than 1024 characters"},
        BadFile{"SameTokenTwice", "web-1 Zq8sEcReT\n\nweb-2 Zq8sEcReT\n",
                "/etc/tally/tokens:3: the same token as line 1 (each token must be unique)"},
        BadFile{"SameBareTokenTwice", "Zq8sEcReT\nZq8sEcReT\n",
                "/etc/tally/tokens:2: the same token as line 1 (each token must be unique)"},
        BadFile{"Empty", "", "token file /etc/tally/tokens holds no token"},
        BadFile{"OnlyComments", "# Zq8sEcReT\n\n  \n",
                "token file /etc/tally/tokens holds no token"}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(TokenFile, AMissingOrOversizedFileIsAnErrorNamingIt) {
  test::TempDir dir;
  auto missing = read_token_file(dir / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find(dir / "nope"), std::string::npos);
  {
    std::ofstream big(dir / "big");
    for (int i = 0; i < 200'000; ++i)
      big << "name-" << i << " token-" << i << "-abcdefghijklmnop\n";
  }
  auto oversized = read_token_file(dir / "big");
  ASSERT_FALSE(oversized.ok());
  EXPECT_NE(oversized.error().message().find("larger than 4194304 bytes"), std::string::npos)
      << oversized.error().message();
}

}  // namespace
}  // namespace tally::collector
