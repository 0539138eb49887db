// Which credential a request's bearer token belongs to.
#include "collector/token_auth.h"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>

#include "collector_test_support.h"

namespace tally::collector {
namespace {

Credentials from(std::string_view text) {
  auto lines = parse_token_file(text, "tokens");
  if (!lines.ok()) ADD_FAILURE() << lines.error().message();
  auto c = Credentials::from_lines(lines.ok() ? *lines : std::vector<TokenLine>{});
  if (!c.ok()) throw std::runtime_error(c.error().message());
  return *c;
}

TEST(TokenAuth, ANamedTokenAuthenticatesAsItsName) {
  Credentials c = from("web-1 token-of-web-1-aaaaaaaa\nweb-2 token-of-web-2-bbbbbbbb\n");
  EXPECT_EQ(c.authenticate("Bearer token-of-web-1-aaaaaaaa"), "web-1");
  EXPECT_EQ(c.authenticate("Bearer token-of-web-2-bbbbbbbb"), "web-2");
  EXPECT_EQ(c.credentials(), 2u);
  EXPECT_EQ(c.tokens(), 2u);
}

TEST(TokenAuth, EveryTokenOfANameAuthenticatesAsThatName) {
  Credentials c = from("db-7 old-token-aaaaaaaa\ndb-7 new-token-bbbbbbbb\n");
  EXPECT_EQ(c.authenticate("Bearer old-token-aaaaaaaa"), "db-7");
  EXPECT_EQ(c.authenticate("Bearer new-token-bbbbbbbb"), "db-7");
  EXPECT_EQ(c.credentials(), 1u);
  EXPECT_EQ(c.tokens(), 2u);
}

TEST(TokenAuth, ABareTokenIsNamedByItsFingerprint) {
  // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
  EXPECT_EQ(token_fingerprint("abc"), "sha256:ba7816bf8f01cfea");
  Credentials c = from("abc\n");
  EXPECT_EQ(c.authenticate("Bearer abc"), "sha256:ba7816bf8f01cfea");
}

TEST(TokenAuth, TheFingerprintAsANameRotatesABareToken) {
  Credentials c = from("old-bare-token-aaaaaaaa\n" + *token_fingerprint("old-bare-token-aaaaaaaa") +
                       " new-token-bbbbbbbb\n");
  EXPECT_EQ(c.authenticate("Bearer old-bare-token-aaaaaaaa"),
            c.authenticate("Bearer new-token-bbbbbbbb"));
  EXPECT_EQ(c.credentials(), 1u);
}

TEST(TokenAuth, MatchesOnlyAnExactBearerToken) {
  Credentials c = from("n abc\n");
  EXPECT_EQ(c.authenticate("Bearer abc"), "n");
  EXPECT_EQ(c.authenticate("bearer   abc "), "n");
  EXPECT_EQ(c.authenticate("BEARER abc"), "n");
  EXPECT_EQ(c.authenticate("Bearer ab"), std::nullopt);
  EXPECT_EQ(c.authenticate("Bearer abcd"), std::nullopt);
  EXPECT_EQ(c.authenticate("Bearer abd"), std::nullopt);
  EXPECT_EQ(c.authenticate("Bearer n abc"), std::nullopt) << "the name is not part of the token";
  EXPECT_EQ(c.authenticate("Basic abc"), std::nullopt);
  EXPECT_EQ(c.authenticate("abc"), std::nullopt);
  EXPECT_EQ(c.authenticate("Bearer "), std::nullopt);
  EXPECT_EQ(c.authenticate(""), std::nullopt);
}

TEST(TokenAuth, LoadsAFile) {
  test::TempDir dir;
  std::ofstream(dir / "tokens") << "# fleet\nweb-1 token-of-web-1-aaaaaaaa\n";
  auto c = Credentials::load(dir / "tokens");
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->authenticate("Bearer token-of-web-1-aaaaaaaa"), "web-1");
  std::ofstream(dir / "bad") << "a b c\n";
  auto bad = Credentials::load(dir / "bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(),
            std::string(dir / "bad") + ":1: expected TOKEN or NAME TOKEN, found 3 fields");
}

}  // namespace
}  // namespace tally::collector
