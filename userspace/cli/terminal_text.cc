#include "cli/terminal_text.h"

#include <cstdint>

#include <fmt/format.h>

#include "tally/utf8.h"

namespace tally::cli {

namespace {

std::uint32_t decode(std::string_view s, std::size_t i, std::size_t n) {
  const auto b = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[i + k]));
  };
  switch (n) {
    case 1:
      return b(0);
    case 2:
      return (b(0) & 0x1F) << 6 | (b(1) & 0x3F);
    case 3:
      return (b(0) & 0x0F) << 12 | (b(1) & 0x3F) << 6 | (b(2) & 0x3F);
    default:
      return (b(0) & 0x07) << 18 | (b(1) & 0x3F) << 12 | (b(2) & 0x3F) << 6 | (b(3) & 0x3F);
  }
}

// Code points a terminal acts on or that change the order text is shown in
// (Unicode's Bidi_Control property).
bool hidden_control(std::uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const std::size_t n = utf8_sequence_length(text, i);
    if (n == 0 || byte < 0x20 || byte == 0x7F) {
      out += fmt::format("\\x{:02x}", byte);
      ++i;
      continue;
    }
    if (n > 1) {
      if (const std::uint32_t cp = decode(text, i, n); hidden_control(cp)) {
        out += fmt::format("\\u{:04x}", cp);
        i += n;
        continue;
      }
    }
    out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace tally::cli
