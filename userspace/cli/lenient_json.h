// Readers of tallyd's answers that take whatever was sent: a member that is
// missing or of another type reads as empty or 0, nothing throws. Every
// string goes through printable() (terminal_text.h): it may hold what a
// process chose to call itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/terminal_text.h"
#include "tally/utf8.h"

namespace tally::cli::lenient {

using Json = nlohmann::json;

inline const Json& member(const Json& j, const char* key) {
  static const Json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

inline const Json& list(const Json& j, const char* key) {
  static const Json kEmpty = Json::array();
  const Json& v = member(j, key);
  return v.is_array() ? v : kEmpty;
}

inline const Json& object(const Json& j, const char* key) {
  static const Json kEmpty = Json::object();
  const Json& v = member(j, key);
  return v.is_object() ? v : kEmpty;
}

inline std::uint64_t u64(const Json& j, const char* key) {
  const Json& v = member(j, key);
  return v.is_number_unsigned() ? v.get<std::uint64_t>() : 0;
}

inline double number(const Json& j, const char* key) {
  const Json& v = member(j, key);
  return v.is_number() ? v.get<double>() : 0.0;
}

inline std::string text(const Json& v) {
  return v.is_string() ? printable(v.get_ref<const std::string&>()) : std::string();
}

inline std::string str(const Json& j, const char* key) { return text(member(j, key)); }

// At most `bytes` bytes of s, never ending inside a UTF-8 sequence.
inline std::string cut(std::string s, std::size_t bytes) {
  s.resize(utf8_cut_length(s, bytes));
  return s;
}

}  // namespace tally::cli::lenient
