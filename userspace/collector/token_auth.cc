#include "collector/token_auth.h"

#include <openssl/evp.h>

#include <cstring>
#include <set>

#include <fmt/format.h>

#include "tally/log.h"

namespace tally::collector {

namespace {

// Shorter tokens can be guessed online (401s are not rate-limited) or, for
// a bare token, from its fingerprint offline.
constexpr std::size_t kShortToken = 16;

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

std::optional<Credentials::Digest> Credentials::digest(std::string_view token) {
  Digest d{};
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), d.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != d.size()) {
    return std::nullopt;
  }
  return d;
}

std::size_t Credentials::DigestHash::operator()(const Digest& d) const {
  std::size_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);  // SHA-256 bits are uniform already
  return h;
}

std::optional<std::string> token_fingerprint(std::string_view token) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), d, &size, EVP_sha256(), nullptr) != 1 || size < 8) {
    return std::nullopt;
  }
  std::string out = "sha256:";
  for (int i = 0; i < 8; ++i) out += fmt::format("{:02x}", d[i]);
  return out;
}

Result<Credentials> Credentials::from_lines(const std::vector<TokenLine>& lines) {
  Credentials c;
  std::set<std::string> names;
  for (const TokenLine& l : lines) {
    auto d = digest(l.token);
    auto name = l.name ? l.name : token_fingerprint(l.token);
    if (!d || !name) return Error("hash tokens: SHA-256 is unavailable (OpenSSL)");
    names.insert(*name);
    c.by_digest_.emplace(*d, std::move(*name));
  }
  c.credential_count_ = names.size();
  return c;
}

Result<Credentials> Credentials::load(const std::string& path) {
  auto lines = read_token_file(path);
  if (!lines.ok()) return lines.error();
  for (const TokenLine& l : *lines) {
    if (l.token.size() < kShortToken) {
      log::warning(
          "{}:{}: the token has only {} characters; use at least 32 random ones "
          "(openssl rand -hex 32)",
          path, l.line, l.token.size());
    }
  }
  return from_lines(*lines);
}

std::optional<std::string> Credentials::authenticate(std::string_view authorization) const {
  std::string_view v = trim(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (v.size() < kScheme.size() || !iequals_ascii(v.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  std::string_view presented = trim(v.substr(kScheme.size()));
  if (presented.empty()) return std::nullopt;
  auto d = digest(presented);
  if (!d) return std::nullopt;
  auto it = by_digest_.find(*d);
  if (it == by_digest_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tally::collector
