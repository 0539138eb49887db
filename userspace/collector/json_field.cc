#include "collector/json_field.h"

#include <fmt/format.h>

namespace tally::collector {

const char* json_type_name(JsonValue::Type t) {
  switch (t) {
    case JsonValue::Type::null:
      return "null";
    case JsonValue::Type::boolean:
      return "boolean";
    case JsonValue::Type::string:
      return "string";
    case JsonValue::Type::unsigned_integer:
      return "unsigned integer";
    case JsonValue::Type::negative_integer:
      return "negative integer";
    case JsonValue::Type::fractional:
      return "number with a fraction or exponent";
    case JsonValue::Type::object:
      return "object";
    case JsonValue::Type::array:
      return "array";
  }
  return "?";
}

namespace {

std::string mismatch(const char* expected, const JsonValue& v) {
  return fmt::format("expected {}, got {}", expected, json_type_name(v.type));
}

}  // namespace

std::optional<std::string> check_field(const JsonValue* v, FieldType t) {
  if (v == nullptr) return "missing";
  using T = JsonValue::Type;
  switch (t) {
    case FieldType::u64:
      if (v->type != T::unsigned_integer) return mismatch("unsigned integer", *v);
      return std::nullopt;
    case FieldType::i64max:
      if (v->type != T::unsigned_integer) return mismatch("unsigned integer", *v);
      if (v->number > kMaxStoredInteger) {
        return fmt::format("{} is out of range (at most {})", v->number, kMaxStoredInteger);
      }
      return std::nullopt;
    case FieldType::u32:
      if (v->type != T::unsigned_integer) return mismatch("unsigned integer", *v);
      if (v->number > 0xffffffffULL) {
        return fmt::format("{} is out of range (at most 4294967295)", v->number);
      }
      return std::nullopt;
    case FieldType::i64:
      if (v->type == T::negative_integer) return std::nullopt;
      if (v->type != T::unsigned_integer) return mismatch("integer", *v);
      if (v->number > kMaxStoredInteger) {
        return fmt::format("{} is out of range (at most {})", v->number, kMaxStoredInteger);
      }
      return std::nullopt;
    case FieldType::number:
      if (v->type != T::unsigned_integer && v->type != T::negative_integer &&
          v->type != T::fractional) {
        return mismatch("number", *v);
      }
      return std::nullopt;
    case FieldType::string:
      if (v->type != T::string) return mismatch("string", *v);
      return std::nullopt;
    case FieldType::boolean:
      if (v->type != T::boolean) return mismatch("boolean", *v);
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace tally::collector
