#include "token_auth.h"

#include <cerrno>
#include <fstream>
#include <sstream>

namespace tally::collector {

namespace {

std::string_view trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

Result<std::string> load_token(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_error(fmt::format("read token file {}", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return errno_error(fmt::format("read token file {}", path));
  std::string token(trim(contents.str()));
  if (token.empty()) return Error::format("token file {} is empty", path);
  return token;
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
  std::string_view v = trim(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (v.size() < kScheme.size() || !iequals_ascii(v.substr(0, kScheme.size()), kScheme)) {
    return false;
  }
  std::string_view presented = trim(v.substr(kScheme.size()));
  // Constant time in the token's length: every byte of the real token is
  // compared, whatever the presented one holds; the length difference is
  // folded in rather than returned early.
  unsigned char diff = presented.size() == token.size() ? 0 : 1;
  for (std::size_t i = 0; i < token.size(); ++i) {
    unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff |= static_cast<unsigned char>(p ^ static_cast<unsigned char>(token[i]));
  }
  return diff == 0;
}

}  // namespace tally::collector
