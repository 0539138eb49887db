#include "token_auth.h"

#include <gtest/gtest.h>

#include <fstream>

#include "collector_test_support.h"

namespace tally::collector {
namespace {

TEST(TokenAuth, LoadsTheTrimmedToken) {
  test::TempDir dir;
  std::ofstream(dir / "token") << "  s3cret-token\n\n";
  auto token = load_token(dir / "token");
  ASSERT_TRUE(token.ok()) << token.error().message();
  EXPECT_EQ(*token, "s3cret-token");
}

TEST(TokenAuth, EmptyOrMissingFileIsAnError) {
  test::TempDir dir;
  std::ofstream(dir / "empty") << " \n";
  auto empty = load_token(dir / "empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message().find("is empty"), std::string::npos);
  auto missing = load_token(dir / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("nope"), std::string::npos);
}

TEST(TokenAuth, MatchesOnlyTheExactBearerToken) {
  EXPECT_TRUE(bearer_matches("Bearer abc", "abc"));
  EXPECT_TRUE(bearer_matches("bearer   abc ", "abc"));
  EXPECT_FALSE(bearer_matches("Bearer ab", "abc"));
  EXPECT_FALSE(bearer_matches("Bearer abcd", "abc"));
  EXPECT_FALSE(bearer_matches("Bearer abd", "abc"));
  EXPECT_FALSE(bearer_matches("Basic abc", "abc"));
  EXPECT_FALSE(bearer_matches("abc", "abc"));
  EXPECT_FALSE(bearer_matches("", "abc"));
}

}  // namespace
}  // namespace tally::collector
