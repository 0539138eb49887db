#include "collector/names_digest.h"

#include <sqlite3.h>
#include <zlib.h>

namespace tally::collector {

namespace {

void sql_names_digest(sqlite3_context* context, int /*argc*/, sqlite3_value** argv) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[0]));
  const int bytes = sqlite3_value_bytes(argv[0]);
  if (text == nullptr) return sqlite3_result_null(context);
  sqlite3_result_int64(context,
                       names_digest(std::string_view(text, static_cast<std::size_t>(bytes))));
}

}  // namespace

std::int64_t names_digest(std::string_view names) {
  const auto crc = crc32_z(0, reinterpret_cast<const Bytef*>(names.data()), names.size());
  // Names are far below 2^31 bytes (the decoder's limits), so the result
  // is never negative.
  return static_cast<std::int64_t>((static_cast<std::uint64_t>(names.size()) << 32) |
                                   (crc & 0xffffffffu));
}

Status register_names_digest(sql::Database& db) {
  const int rc =
      sqlite3_create_function_v2(db.handle(), "names_digest", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                 nullptr, &sql_names_digest, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return db.error("register names_digest() on", rc);
  return ok_status();
}

}  // namespace tally::collector
