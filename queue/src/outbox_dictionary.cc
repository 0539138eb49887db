// The dictionary: entries that stored records refer to by key, one row per
// append that added any (schema.cc, version 3).
//
// Why a row carries a seq: its entries may be deleted only when no stored
// record can refer to them. The writer retires a key once no later append
// will use it (a process exited or exec'd, or the writer restarted); records
// from before are in batches formed by then, or still staged. So a row whose
// keys are all retired gets the last seq formed once nothing is staged any
// more, and goes when every batch up to that seq has gone (acked by every
// sink, rejected, or evicted by the cap).
#include <algorithm>
#include <vector>

#include "outbox_core.h"

namespace tally::queue {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}

// Entry `index` of a row's entries blob, or nullopt if the blob is short.
std::optional<std::string_view> entry_at(std::string_view blob, std::uint64_t index) {
  std::size_t pos = 0;
  for (std::uint64_t i = 0;; ++i) {
    if (blob.size() - pos < 4) return std::nullopt;
    std::uint32_t n = 0;
    for (int b = 0; b < 4; ++b) {
      n |= static_cast<std::uint32_t>(static_cast<unsigned char>(blob[pos + b])) << (8 * b);
    }
    pos += 4;
    if (blob.size() - pos < n) return std::nullopt;
    if (i == index) return blob.substr(pos, n);
    pos += n;
  }
}

}  // namespace

Result<std::optional<std::string>> OutboxCore::dictionary_entry(std::uint64_t key) {
  TALLY_TRY(usable());
  const std::string what = fmt::format("read dictionary entry {}", key);
  auto get = stmts_.use(Q::dict_get);
  get->bind(1, key);
  auto row = get->step();
  if (!row) return row.error().context(what);
  if (!*row) return std::optional<std::string>();
  const std::uint64_t first_key = get->column_u64(0);
  auto entry = entry_at(get->column_blob(1), key - first_key);
  if (!entry) {
    return Error::format("{}: the row of keys from {} in {} is damaged", what, first_key,
                         db_.path().string());
  }
  return std::optional<std::string>(std::string(*entry));
}

Status OutboxCore::add_entries(State& next, const DictionaryUpdate& dictionary) {
  if (dictionary.added.empty() && dictionary.retired.empty()) return ok_status();
  // Retired now, or staged records may still refer to them.
  const bool settled = next.staged_rows == 0;
  std::vector<std::uint64_t> retired(dictionary.retired);
  std::sort(retired.begin(), retired.end());
  const auto retired_now = [&](std::uint64_t key) {
    return std::binary_search(retired.begin(), retired.end(), key);
  };

  if (!dictionary.added.empty()) {
    const std::uint64_t first_key = dictionary.added.front().first;
    std::string blob;
    std::uint64_t live = 0;
    for (std::size_t i = 0; i < dictionary.added.size(); ++i) {
      const auto& [key, value] = dictionary.added[i];
      if (key != first_key + i) {
        return Error::format("dictionary keys of one append must be consecutive: {} follows {}",
                             key, first_key + i - 1);
      }
      if (key < first_unused_key_) {
        return Error::format("dictionary key {} is in use (the next unused one is {})", key,
                             first_unused_key_);
      }
      put_u32(blob, static_cast<std::uint32_t>(value.size()));
      blob += value;
      if (!retired_now(key)) ++live;
    }
    auto insert = stmts_.use(Q::dict_insert);
    insert->bind(1, first_key)
        .bind(2, static_cast<std::uint64_t>(dictionary.added.size()))
        .bind_blob(3, blob)
        .bind(4, live);
    if (live == 0 && settled) {
      insert->bind(5, next[Counter::last_seq]);
    } else {
      insert->bind_null(5);
    }
    TALLY_TRY_CTX(insert->run(), fmt::format("store dictionary entries from {}", first_key));
    next.dict_bytes += blob.size();
    if (live == 0) ++(settled ? next.dict_settled : next.dict_unsettled);
    first_unused_key_ = first_key + dictionary.added.size();
  }

  const std::uint64_t added_from = dictionary.added.empty() ? 0 : dictionary.added.front().first;
  for (const std::uint64_t key : retired) {
    if (!dictionary.added.empty() && key >= added_from) continue;  // counted at insert
    auto retire = stmts_.use(Q::dict_retire);
    retire->bind(1, key);
    if (settled) {
      retire->bind(2, next[Counter::last_seq]);
    } else {
      retire->bind_null(2);
    }
    auto row = retire->step();
    if (!row) return row.error().context(fmt::format("retire dictionary key {}", key));
    // No row: a key of an append that failed, never stored.
    if (*row && retire->column_int(0) == 0) ++(settled ? next.dict_settled : next.dict_unsettled);
  }
  return ok_status();
}

Status OutboxCore::settle_entries(State& next) {
  if (next.dict_unsettled == 0) return ok_status();
  auto settle = stmts_.use(Q::dict_settle);
  settle->bind(1, next[Counter::last_seq]);
  TALLY_TRY_CTX(settle->run(), "settle retired dictionary entries");
  next.dict_settled += next.dict_unsettled;
  next.dict_unsettled = 0;
  return ok_status();
}

Status OutboxCore::prune_entries(State& next) {
  // Below the oldest batch left, or every settled row when none is left.
  std::uint64_t below = next[Counter::last_seq] + 1;
  {
    auto oldest = stmts_.use(Q::batch_min_seq);
    auto row = oldest->step();
    if (!row) return row.error().context("find the oldest batch");
    if (*row && !oldest->column_is_null(0)) below = oldest->column_u64(0);
  }
  auto prune = stmts_.use(Q::dict_prune);
  prune->bind(1, below);
  std::uint64_t removed = 0, bytes = 0;
  TALLY_TRY_CTX(prune->each_row([&](sql::Statement& row) {
    ++removed;
    bytes += row.column_u64(0);
  }),
                "delete dictionary entries no batch refers to");
  next.dict_settled -= std::min(next.dict_settled, removed);
  next.dict_bytes -= std::min(next.dict_bytes, bytes);
  return ok_status();
}

Status OutboxCore::retire_live_entries() {
  auto live = db_.query_int("SELECT count(*) FROM dictionary WHERE live > 0");
  if (!live) return live.error().context("count dictionary entries");
  if (*live == 0) return ok_status();
  retire_pending_ = true;  // transact() retires them with the first write that succeeds
  auto result = transact([](State&) { return ok_status(); });
  if (result) return ok_status();
  if (!disk_full_) {
    return result.error().context("retire the dictionary entries of the last writer");
  }
  // Open anyway, to ship what the outbox holds: until the disk takes the
  // retirement these entries stay stored (they are counted, and the keys
  // the new writer takes are above them all the same).
  log::warning(
      "outbox {}: {}; retiring the last writer's dictionary entries once a write "
      "succeeds",
      db_.path().string(), result.error().message());
  return ok_status();
}

Status OutboxCore::retire_entries_left_live(State& next) {
  const bool settled = next.staged_rows == 0;
  auto live = db_.query_int("SELECT count(*) FROM dictionary WHERE live > 0");
  if (!live) return live.error().context("count dictionary entries");
  TALLY_TRY(db_.exec(settled ? fmt::format("UPDATE dictionary SET live = 0, retired_seq = {} "
                                           "WHERE live > 0",
                                           next[Counter::last_seq])
                             : std::string("UPDATE dictionary SET live = 0 WHERE live > 0")));
  (settled ? next.dict_settled : next.dict_unsettled) += static_cast<std::uint64_t>(*live);
  return ok_status();
}

}  // namespace tally::queue
