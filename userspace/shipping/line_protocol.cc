#include "shipping/line_protocol.h"

#include <cstdint>

#include "tally/utf8.h"

namespace tally::shipping::line_protocol {

namespace {

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7F; }

// `special` are the characters that get a backslash in this element.
// `quoted`: a string field value, where every backslash is escaped (both
// servers read "\\" as one backslash there). Elsewhere InfluxDB 1.x keeps
// "\\" as two characters while VictoriaMetrics reads one, so a backslash is
// doubled only where it must be, before a special character, a backslash,
// a control character's escape or the end; before anything else both servers
// store a single backslash as it is.
void append_escaped(std::string& out, std::string_view text, std::string_view special,
                    bool quoted) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto is_special = [&](unsigned char c) {
    return special.find(static_cast<char>(c)) != std::string_view::npos;
  };
  const char* escape_prefix = quoted ? "\\\\" : "\\";
  out.reserve(out.size() + text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t n = utf8_sequence_length(text, i);
      if (n == 0) {
        out += "\xEF\xBF\xBD";  // U+FFFD for one bad byte
        ++i;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    ++i;
    if (is_control(c)) {
      // A visible escape: the server stores the two characters "\n".
      out += escape_prefix;
      switch (c) {
        case '\n':
          out += 'n';
          break;
        case '\r':
          out += 'r';
          break;
        case '\t':
          out += 't';
          break;
        default:
          out += 'x';
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
      }
      continue;
    }
    if (c == '\\') {
      const bool last = i == text.size();
      const auto next = last ? 0 : static_cast<unsigned char>(text[i]);
      out +=
          (quoted || last || next == '\\' || is_special(next) || is_control(next)) ? "\\\\" : "\\";
      continue;
    }
    if (is_special(c)) out += '\\';
    out += static_cast<char>(c);
  }
}

}  // namespace

void append_measurement(std::string& out, std::string_view name) {
  append_escaped(out, name, ", ", false);
}

void append_key(std::string& out, std::string_view text) {
  append_escaped(out, text, ",= ", false);
}

void append_string_field(std::string& out, std::string_view text) {
  out += '"';
  append_escaped(out, text, "\"", true);
  out += '"';
}

}  // namespace tally::shipping::line_protocol
