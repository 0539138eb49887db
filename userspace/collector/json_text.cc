#include "collector/json_text.h"

namespace tally::collector {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Copy runs of characters that need no escape in one append: almost all
  // of a command line or a path.
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto u = static_cast<unsigned char>(s[i]);
    if (u >= 0x20 && u != '"' && u != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (u) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        // RFC 8259 section 7: other control characters as \u00XX.
        out += "\\u00";
        out.push_back(kHex[u >> 4]);
        out.push_back(kHex[u & 0xf]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void append_with_names(std::string& out, std::string_view object, std::size_t at,
                       std::string_view names) {
  if (names.empty() || at == 0 || at > object.size()) {
    out += object;
    return;
  }
  const bool first = object[at - 1] == '{';
  out.append(object.substr(0, at));
  if (!first) out.push_back(',');
  out += names;
  if (first && at < object.size() && object[at] != '}') out.push_back(',');
  out.append(object.substr(at));
}

std::string with_names(std::string_view object, std::size_t at, std::string_view names) {
  std::string out;
  out.reserve(object.size() + names.size() + 2);
  append_with_names(out, object, at, names);
  return out;
}

}  // namespace tally::collector
