// The outbox schema, versioned with PRAGMA user_version, and the migrations
// that bring an older file up to date.
#pragma once

#include <span>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::queue {

// The version this code writes. A file with a higher user_version is from a
// newer tally and is quarantined rather than guessed at.
inline constexpr int kSchemaVersion = 4;

// Upgrades a database from version `from` to `from + 1`.
struct Migration {
  int from = 0;
  Status (*apply)(sql::Database& db);
};

// kMigrations[i] upgrades version i to i + 1; version 0 is an empty file.
std::span<const Migration> schema_migrations();

// Runs the steps needed to bring `db` from its user_version to
// migrations.size(), each step and its user_version bump in one transaction,
// so a crash leaves the file at a whole version. Fails on a version newer
// than migrations.size().
Status migrate(sql::Database& db, std::span<const Migration> migrations);

}  // namespace tally::queue
