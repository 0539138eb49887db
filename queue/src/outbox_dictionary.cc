// The dictionary: entries that stored records refer to by key.
//
// Why retired entries carry a seq: an entry may be deleted only when no
// stored record can refer to it. The writer retires a key once no later
// append will use it (a process exited, or the writer restarted); records
// from before are in batches formed by then, or still staged. So a retired
// entry gets the last seq formed once nothing is staged any more, and goes
// when every batch up to that seq has gone (acked by every sink, rejected,
// or evicted by the cap).
#include <algorithm>
#include <vector>

#include "outbox_core.h"
#include "try.h"

namespace tally::queue {

Result<std::optional<std::string>> OutboxCore::dictionary_entry(std::uint64_t key) {
  auto get = stmts_.use(Q::dict_get);
  get->bind(1, key);
  auto row = get->step();
  if (!row) return row.error().context(fmt::format("read dictionary entry {}", key));
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(std::string(get->column_blob(0)));
}

Status OutboxCore::add_entries(State& next, const DictionaryUpdate& dictionary) {
  if (dictionary.added.empty() && dictionary.retired.empty()) return ok_status();
  const bool settled = next.staged_rows == 0;
  std::uint64_t& retired_count = settled ? next.dict_settled : next.dict_unsettled;
  // Usually a dozen keys each way; after a writer's failed append, every
  // key it knew is retired at once.
  std::vector<std::uint64_t> retired_keys(dictionary.retired);
  std::sort(retired_keys.begin(), retired_keys.end());
  std::vector<std::uint64_t> added_keys;
  added_keys.reserve(dictionary.added.size());
  for (const auto& entry : dictionary.added) added_keys.push_back(entry.first);
  std::sort(added_keys.begin(), added_keys.end());
  const auto retired_now = [&](std::uint64_t key) {
    return std::binary_search(retired_keys.begin(), retired_keys.end(), key);
  };
  const auto bind_retirement = [&](sql::Statement::Use& q, int index) {
    if (settled) {
      q->bind(index, next[Counter::last_seq]);
    } else {
      q->bind_null(index);
    }
  };
  for (const auto& [key, value] : dictionary.added) {
    const bool retired = retired_now(key);
    auto insert = stmts_.use(Q::dict_insert);
    insert->bind(1, key).bind_blob(2, value).bind(3, retired ? 1 : 0);
    if (retired) {
      bind_retirement(insert, 4);
      ++retired_count;
    } else {
      insert->bind_null(4);
    }
    TALLY_TRY_CTX(insert->run(), fmt::format("store dictionary entry {}", key));
    if (key >= first_unused_key_) first_unused_key_ = key + 1;
  }
  for (const std::uint64_t key : dictionary.retired) {
    if (std::binary_search(added_keys.begin(), added_keys.end(), key)) continue;
    auto retire = stmts_.use(Q::dict_retire);
    retire->bind(1, key);
    bind_retirement(retire, 2);
    TALLY_TRY_CTX(retire->run(), fmt::format("retire dictionary entry {}", key));
    retired_count += static_cast<std::uint64_t>(retire->changes());
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
  // Below the oldest batch left, or every settled entry when none is left.
  std::uint64_t below = next[Counter::last_seq] + 1;
  {
    auto oldest = stmts_.use(Q::batch_min_seq);
    auto row = oldest->step();
    if (!row) return row.error().context("find the oldest batch");
    if (*row && !oldest->column_is_null(0)) below = oldest->column_u64(0);
  }
  auto prune = stmts_.use(Q::dict_prune);
  prune->bind(1, below);
  TALLY_TRY_CTX(prune->run(), "delete dictionary entries no batch refers to");
  const auto removed = static_cast<std::uint64_t>(prune->changes());
  next.dict_settled -= std::min(next.dict_settled, removed);
  return ok_status();
}

Status OutboxCore::retire_live_entries() {
  auto max_key = db_.query_int("SELECT coalesce(max(key), 0) FROM dictionary");
  if (!max_key) return max_key.error().context("read dictionary keys");
  first_unused_key_ = static_cast<std::uint64_t>(*max_key) + 1;
  auto counts = [&](const char* sql, std::uint64_t& out) -> Status {
    auto n = db_.query_int(sql);
    if (!n) return n.error().context("count dictionary entries");
    out = static_cast<std::uint64_t>(*n);
    return ok_status();
  };
  QUEUE_TRY(counts("SELECT count(*) FROM dictionary WHERE retired = 1 AND retired_seq IS NULL",
                   state_.dict_unsettled));
  QUEUE_TRY(counts("SELECT count(*) FROM dictionary WHERE retired_seq IS NOT NULL",
                   state_.dict_settled));
  auto live = db_.query_int("SELECT count(*) FROM dictionary WHERE retired = 0");
  if (!live) return live.error().context("count dictionary entries");
  if (*live == 0) return ok_status();
  auto result = transact([&](State& next) -> Status {
    const bool settled = next.staged_rows == 0;
    QUEUE_TRY(db_.exec(settled ? fmt::format("UPDATE dictionary SET retired = 1, retired_seq = {} "
                                             "WHERE retired = 0",
                                             next[Counter::last_seq])
                               : std::string("UPDATE dictionary SET retired = 1 WHERE retired = 0")));
    (settled ? next.dict_settled : next.dict_unsettled) += static_cast<std::uint64_t>(*live);
    return ok_status();
  });
  if (!result) return result.error().context("retire the dictionary entries of the last writer");
  return ok_status();
}

}  // namespace tally::queue
