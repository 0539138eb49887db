// The collector's token file (--token-file): the bearer tokens clients may
// present, each with the name of the credential it belongs to.
//
//   # comments and blank lines are ignored
//   web-1  9f86d081884c7d659a2feaa0c55ad015     a named token
//   web-1  2c26b46b68ffc68ff99b453c1d304134     a second token of web-1 (rotation)
//   3e23e8160039594a33894f6564e1b134            a token without a name
//
// A line is TOKEN or NAME TOKEN, separated by spaces or tabs; a line whose
// first non-blank character is '#' is a comment. A token is 1 to 1,024
// printable ASCII characters other than space (what an Authorization header
// can carry); a name is 1 to 128 letters, digits and ". _ : @ -". A name may
// appear on several lines: its tokens are then interchangeable, which is how
// a token is rotated without the credential changing. The same token twice
// is an error. A file of one bare token (what earlier collectors read) is
// still valid.
//
// Errors name the file and line ("/etc/tally/tokens:3: ...") and never
// quote a token, nor any part of a line (a misplaced token could be in it).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/result.h"

namespace tally::collector {

struct TokenLine {
  std::optional<std::string> name;  // nullopt: a bare token
  std::string token;
  std::size_t line = 0;  // 1-based, for messages
};

inline constexpr std::size_t kMaxTokenFileBytes = 4u << 20;
inline constexpr std::size_t kMaxTokenBytes = 1024;
inline constexpr std::size_t kMaxCredentialNameBytes = 128;

// Parses the text of a token file; `path` is only used in messages. At
// least one token is required.
Result<std::vector<TokenLine>> parse_token_file(std::string_view text, std::string_view path);

// Reads and parses the file (at most kMaxTokenFileBytes).
Result<std::vector<TokenLine>> read_token_file(const std::string& path);

}  // namespace tally::collector
