// The key under which the store finds a process's names again without
// reading every text it holds: their length and CRC-32 (zlib), one 64-bit
// integer. Not a proof of equality (the store compares the text of every
// candidate); it only keeps the candidates few.
#pragma once

#include <cstdint>
#include <string_view>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

std::int64_t names_digest(std::string_view names);

// Makes names_digest(text) callable from SQL on this connection, for the
// schema upgrade that moves the names it finds into the names table.
Status register_names_digest(sql::Database& db);

}  // namespace tally::collector
