#include "collector/token_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <unordered_map>

#include <fmt/format.h>

#include "tally/fd.h"
#include "tally/log.h"

namespace tally::collector {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '@' || c == '-';
}

// The problem with a token, or nothing. Never quotes it.
std::optional<std::string> token_problem(std::string_view token) {
  if (token.size() > kMaxTokenBytes) {
    return fmt::format("the token is longer than {} characters", kMaxTokenBytes);
  }
  return std::nullopt;
}

std::optional<std::string> name_problem(std::string_view name) {
  if (name.size() > kMaxCredentialNameBytes) {
    return fmt::format("the name is longer than {} characters", kMaxCredentialNameBytes);
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i])) {
      return fmt::format(
          "the name has a character other than letters, digits and . _ : @ - (column {})", i + 1);
    }
  }
  return std::nullopt;
}

// Splits a line into its fields, or says which byte is not allowed. Every
// byte of a token or name is printable ASCII; a control byte (a stray CR
// aside) or a non-ASCII byte is reported by column, not shown.
Result<std::vector<std::string_view>> fields_of(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    if (is_blank(line[i])) {
      ++i;
      continue;
    }
    std::size_t start = i;
    while (i < line.size() && !is_blank(line[i])) {
      auto byte = static_cast<unsigned char>(line[i]);
      if (byte < 0x21 || byte > 0x7e) {
        return Error::format("a byte that is not printable ASCII (0x{:02x}) at column {}", byte,
                             i + 1);
      }
      ++i;
    }
    fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

}  // namespace

Result<std::vector<TokenLine>> parse_token_file(std::string_view text, std::string_view path) {
  std::vector<TokenLine> lines;
  // Which line holds each token, to report a token given twice.
  std::unordered_map<std::string_view, std::size_t> line_of;
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == text.npos ? text.size() : end + 1);
    auto error = [&](std::string_view what) {
      return Error::format("{}:{}: {}", path, number, what);
    };

    std::size_t first = line.find_first_not_of(" \t\r");
    if (first == line.npos || line[first] == '#') continue;
    auto fields = fields_of(line);
    if (!fields.ok()) return error(fields.error().message());
    if (fields->size() > 2) {
      return error(fmt::format("expected TOKEN or NAME TOKEN, found {} fields", fields->size()));
    }
    TokenLine entry;
    entry.line = number;
    if (fields->size() == 2) {
      if (auto problem = name_problem((*fields)[0])) return error(*problem);
      entry.name = std::string((*fields)[0]);
    }
    std::string_view token = fields->back();
    if (auto problem = token_problem(token)) return error(*problem);
    entry.token = std::string(token);
    lines.push_back(std::move(entry));
  }
  // Views into the strings of `lines`, which no longer moves.
  for (const TokenLine& l : lines) {
    auto [it, added] = line_of.emplace(l.token, l.line);
    if (!added) {
      return Error::format("{}:{}: the same token as line {} (each token must be unique)", path,
                           l.line, it->second);
    }
  }
  if (lines.empty()) return Error::format("token file {} holds no token", path);
  return lines;
}

Result<std::vector<TokenLine>> read_token_file(const std::string& path) {
  const std::string what = fmt::format("read token file {}", path);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error(what);
  // Tokens are secrets: say so when other users can read them.
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && (st.st_mode & S_IROTH) != 0) {
    log::warning("token file {} is readable by every user (mode {:04o}); chmod o-r it", path,
                 st.st_mode & 07777);
  }
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(what);
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxTokenFileBytes) {
      return Error::format("{}: larger than {} bytes", what, kMaxTokenFileBytes);
    }
  }
  return parse_token_file(text, path);
}

}  // namespace tally::collector
