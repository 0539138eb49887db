// Checking one JSON field against the type the protocol gives it, with the
// error text the 400 response carries ("expected unsigned integer, got
// string"). Used by the batch parser for the envelope, the gap record and
// every sample.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tally::collector {

// What the parser saw for a field. Containers are recorded by type only:
// no field the protocol knows holds one.
struct JsonValue {
  enum class Type {
    null,
    boolean,
    string,
    unsigned_integer,
    negative_integer,
    fractional,
    object,
    array
  };
  JsonValue() = default;
  explicit JsonValue(Type t) : type(t) {}

  Type type = Type::null;
  bool boolean = false;
  std::uint64_t number = 0;  // unsigned_integer; negative_integer: two's complement
  std::string text;          // string
};

enum class FieldType {
  u64,     // unsigned integer, 0 to 2^64-1
  i64max,  // unsigned integer that the collector stores: 0 to 2^63-1 (SQLite INTEGER)
  u32,     // unsigned integer, 0 to 2^32-1
  i64,     // integer, -2^63 to 2^63-1 (a negative one's number holds its two's complement)
  number,  // any JSON number
  string,
  boolean,
};

inline constexpr std::uint64_t kMaxStoredInteger = 9223372036854775807ULL;  // 2^63-1

// "string", "unsigned integer", "object", ...: for "expected X, got Y".
const char* json_type_name(JsonValue::Type t);

// Returns the problem with v as a field of type t ("missing" when the
// pointer is null, i.e. the field was absent), or nothing when v is acceptable.
std::optional<std::string> check_field(const JsonValue* v, FieldType t);

}  // namespace tally::collector
