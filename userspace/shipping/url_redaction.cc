#include "shipping/url_redaction.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace tally::shipping {

namespace {

constexpr std::string_view kRedacted = "REDACTED";

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "a=1&apikey=x&b" with secret values replaced; separators kept as they were.
void append_redacted_query(std::string& out, std::string_view query) {
  while (true) {
    const auto amp = query.find_first_of("&;");
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && is_secret_parameter(pair.substr(0, eq))) {
      out += pair.substr(0, eq + 1);
      out += kRedacted;
    } else {
      out += pair;
    }
    if (amp == std::string_view::npos) return;
    out += query[amp];
    query.remove_prefix(amp + 1);
  }
}

}  // namespace

bool is_secret_parameter(std::string_view name) {
  const std::string n = lowercase(name);
  // Exact names that are short enough to be ordinary words elsewhere.
  if (n == "p" || n == "pw" || n == "pwd" || n == "sig") return true;
  static constexpr std::array<std::string_view, 8> kParts = {
      "token", "key", "pass", "secret", "signature", "auth", "credential", "session"};
  return std::any_of(kParts.begin(), kParts.end(),
                     [&](std::string_view part) { return n.find(part) != std::string::npos; });
}

std::string redact_url(std::string_view url) {
  std::string out;
  out.reserve(url.size());
  // Authority: after "scheme://" up to the first '/', '?' or '#'. Without a
  // scheme the URL is taken to start with the authority, as curl does.
  std::size_t authority = 0;
  if (const auto scheme = url.find("://"); scheme != std::string_view::npos) {
    authority = scheme + 3;
  }
  const auto authority_end = std::min(url.find_first_of("/?#", authority), url.size());
  // The last '@' ends the userinfo: a password may itself hold '@'.
  const auto at = url.substr(authority, authority_end - authority).rfind('@');
  out += url.substr(0, authority);
  if (at != std::string_view::npos) {
    out += kRedacted;
    out += url.substr(authority + at, authority_end - authority - at);
  } else {
    out += url.substr(authority, authority_end - authority);
  }
  std::string_view rest = url.substr(authority_end);
  const auto hash = rest.find('#');
  const std::string_view fragment = hash == std::string_view::npos ? "" : rest.substr(hash);
  rest = rest.substr(0, hash);
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    out += rest.substr(0, q + 1);
    append_redacted_query(out, rest.substr(q + 1));
  } else {
    out += rest;
  }
  out += fragment;
  return out;
}

}  // namespace tally::shipping
