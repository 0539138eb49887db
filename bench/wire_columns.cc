#include "wire_columns.h"

#include <charconv>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tally::bench {

namespace {

// Column types of version 2 (docs/protocol.md, "Version 2").
constexpr char kString = 's';    // index into the body's string table
constexpr char kUnsigned = 'u';  // integer 0 to 2^63-1, sent as the difference from the row above
constexpr char kNumber = 'n';    // any other number, as spelled
constexpr char kBoolean = 'b';

struct Field {
  std::string_view key;
  char type;
  std::string_view text;    // string contents (no quotes) or the token
  std::uint64_t value = 0;  // kUnsigned
};

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A JSON number (RFC 8259 section 6) at s[pos]; returns its end or npos.
std::size_t scan_number(std::string_view s, std::size_t pos) {
  std::size_t i = pos;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size() || !is_digit(s[i])) return std::string_view::npos;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || !is_digit(s[i])) return std::string_view::npos;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= s.size() || !is_digit(s[i])) return std::string_view::npos;
    while (i < s.size() && is_digit(s[i])) ++i;
  }
  return i;
}

// Splits a line written the way tallyd writes its samples - a compact, flat
// JSON object whose keys are [A-Za-z0-9_]+ and whose values are strings
// without escapes or control characters, numbers and booleans - into its
// fields. Anything else (nesting, null, whitespace, escapes) returns false
// and the line is sent as text, so what a collector rebuilds is always what
// it would have parsed from the line itself.
bool scan_flat(std::string_view s, std::vector<Field>& out) {
  out.clear();
  std::size_t i = 0;
  if (s.size() < 2 || s[0] != '{' || s[1] == '}') return false;
  ++i;
  for (;;) {
    if (i >= s.size() || s[i] != '"') return false;
    const std::size_t key_start = ++i;
    while (i < s.size() && is_key_char(s[i])) ++i;
    if (i == key_start || i + 1 >= s.size() || s[i] != '"' || s[i + 1] != ':') return false;
    Field f{s.substr(key_start, i - key_start), 0, {}, 0};
    i += 2;
    if (i >= s.size()) return false;
    if (s[i] == '"') {
      const std::size_t start = ++i;
      while (i < s.size() && s[i] != '"') {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\\' || c < 0x20) return false;
        ++i;
      }
      if (i >= s.size()) return false;
      f.type = kString;
      f.text = s.substr(start, i - start);
      ++i;
    } else if (s.substr(i, 4) == "true" || s.substr(i, 5) == "false") {
      f.type = kBoolean;
      f.text = s.substr(i, s[i] == 't' ? 4 : 5);
      i += f.text.size();
    } else {
      const std::size_t end = scan_number(s, i);
      if (end == std::string_view::npos) return false;
      f.text = s.substr(i, end - i);
      f.type = kNumber;
      if (is_digit(f.text[0]) && f.text.find_first_of(".eE") == std::string_view::npos) {
        auto [p, ec] = std::from_chars(f.text.data(), f.text.data() + f.text.size(), f.value);
        if (ec == std::errc() && f.value <= 0x7fffffffffffffffULL) f.type = kUnsigned;
      }
      i = end;
    }
    out.push_back(f);
    if (i >= s.size()) return false;
    if (s[i] == '}') return i + 1 == s.size();
    if (s[i] != ',') return false;
    ++i;
  }
}

// The lines of one shape (same keys, same value types), as columns.
struct Table {
  std::vector<std::string_view> keys;
  std::string types;
  std::string rows;                  // body indexes, each the difference from the one before
  std::vector<std::string> columns;  // comma-separated cells
  // kUnsigned columns also as plain values: sent instead of the differences
  // (as kNumber) when shorter, e.g. CPU times, which do not grow row to row.
  std::vector<std::string> plain;
  std::vector<std::uint64_t> last;  // kUnsigned columns: the value in the row above
  std::uint32_t count = 0;
  std::uint32_t last_row = 0;
};

}  // namespace

namespace {

void append_columns(std::string& body, std::span<const std::string_view> lines) {
  std::vector<Table> tables;
  std::unordered_map<std::string, std::size_t> table_of;  // shape -> index in tables
  std::vector<std::string_view> strings;
  std::unordered_map<std::string_view, std::uint32_t> string_index;
  std::string raw;
  std::vector<Field> fields;
  std::string shape;
  for (std::uint32_t row = 0; row < lines.size(); ++row) {
    if (!scan_flat(lines[row], fields)) {
      if (!raw.empty()) raw += ',';
      fmt::format_to(std::back_inserter(raw), "[{},{}]", row,
                     nlohmann::json(std::string(lines[row]))
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      continue;
    }
    shape.clear();
    for (const Field& f : fields) {
      shape += f.key;
      shape += '\0';
      shape += f.type;
    }
    auto [it, inserted] = table_of.try_emplace(shape, tables.size());
    if (inserted) {
      Table t;
      for (const Field& f : fields) {
        t.keys.push_back(f.key);
        t.types += f.type;
      }
      t.columns.resize(fields.size());
      t.plain.resize(fields.size());
      t.last.resize(fields.size());
      tables.push_back(std::move(t));
    }
    Table& t = tables[it->second];
    fmt::format_to(std::back_inserter(t.rows), "{}{}", t.count ? "," : "",
                   t.count ? row - t.last_row : row);
    t.last_row = row;
    for (std::size_t c = 0; c < fields.size(); ++c) {
      const Field& f = fields[c];
      std::string& col = t.columns[c];
      if (t.count) col += ',';
      switch (f.type) {
        case kString: {
          auto [s, added] =
              string_index.try_emplace(f.text, static_cast<std::uint32_t>(strings.size()));
          if (added) strings.push_back(f.text);
          fmt::format_to(std::back_inserter(col), "{}", s->second);
          break;
        }
        case kUnsigned:
          // Both below 2^63: the difference fits in a signed 64-bit integer.
          fmt::format_to(std::back_inserter(col), "{}",
                         static_cast<std::int64_t>(f.value) - static_cast<std::int64_t>(t.last[c]));
          t.last[c] = f.value;
          if (t.count) t.plain[c] += ',';
          t.plain[c] += f.text;
          break;
        default:
          col += f.text;
          break;
      }
    }
    ++t.count;
  }
  body += R"("strings":[)";
  for (std::size_t i = 0; i < strings.size(); ++i) {
    if (i) body += ',';
    body += '"';
    body += strings[i];  // no quote, backslash or control character: scan_flat checked
    body += '"';
  }
  body += R"(],"tables":[)";
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const Table& t = tables[i];
    if (i) body += ',';
    body += R"({"keys":[)";
    for (std::size_t k = 0; k < t.keys.size(); ++k) {
      fmt::format_to(std::back_inserter(body), "{}\"{}\"", k ? "," : "", t.keys[k]);
    }
    std::string types = t.types;
    for (std::size_t c = 0; c < types.size(); ++c) {
      if (types[c] == kUnsigned && t.plain[c].size() < t.columns[c].size()) types[c] = kNumber;
    }
    fmt::format_to(std::back_inserter(body), R"(],"types":"{}","rows":[{}],"columns":[)", types,
                   t.rows);
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      fmt::format_to(std::back_inserter(body), "{}[{}]", c ? "," : "",
                     types[c] == t.types[c] ? t.columns[c] : t.plain[c]);
    }
    body += "]}";
  }
  body += R"(],"raw":[)";
  body += raw;
  body += ']';
}

}  // namespace

std::string encode_columns(std::string_view agent_id, std::string_view host, std::uint64_t seq,
                           std::span<const std::string_view> lines) {
  std::string body = fmt::format(
      R"({{"version":2,"agent_id":{},"host":{},"seq":{},"kind":"samples","first_index":0,)"
      R"("batch_samples":{},"count":{},)",
      nlohmann::json(std::string(agent_id)).dump(), nlohmann::json(std::string(host)).dump(), seq,
      lines.size(), lines.size());
  append_columns(body, lines);
  body += '}';
  return body;
}

}  // namespace tally::bench
