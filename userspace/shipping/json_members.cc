#include "json_members.h"

namespace tally::shipping {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void skip_space(std::string_view s, std::size_t& i) {
  while (i < s.size() && is_space(s[i])) ++i;
}

// s[i] is an opening quote; leaves i after the closing one.
bool skip_string(std::string_view s, std::size_t& i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      ++i;
      return true;
    }
  }
  return false;
}

// Leaves i after the value that starts at s[i].
bool skip_value(std::string_view s, std::size_t& i) {
  if (i >= s.size()) return false;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      const char c = s[i];
      if (c == '"') {
        if (!skip_string(s, i)) return false;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) {
          ++i;
          return true;
        }
      }
      ++i;
    }
    return false;
  }
  const std::size_t start = i;
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_space(s[i])) ++i;
  return i > start;
}

}  // namespace

bool scan_members(std::string_view line, std::vector<JsonMember>& members) {
  members.clear();
  std::size_t i = 0;
  skip_space(line, i);
  if (i >= line.size() || line[i] != '{') return false;
  ++i;
  skip_space(line, i);
  if (i < line.size() && line[i] == '}') {
    ++i;
  } else {
    for (;;) {
      skip_space(line, i);
      if (i >= line.size() || line[i] != '"') return false;
      const std::size_t key_start = i;
      if (!skip_string(line, i)) return false;
      const std::string_view key = line.substr(key_start + 1, i - key_start - 2);
      skip_space(line, i);
      if (i >= line.size() || line[i] != ':') return false;
      ++i;
      skip_space(line, i);
      const std::size_t value_start = i;
      if (!skip_value(line, i)) return false;
      members.push_back({key, line.substr(value_start, i - value_start)});
      skip_space(line, i);
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      return false;
    }
  }
  skip_space(line, i);
  return i == line.size();
}

}  // namespace tally::shipping
