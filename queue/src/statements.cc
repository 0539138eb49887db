#include "statements.h"

#include <string_view>
#include <utility>

namespace tally::queue {
namespace {

using Entry = sql::StatementSql<Q>;

// Deliveries are found by (sink_id, seq) through the primary key; "by seq"
// becomes one primary-key lookup per sink (sink_id IN sinks).
constexpr Entry kSql[] = {
    {Q::meta_get, "SELECT value FROM meta WHERE key = ?1"},
    {Q::meta_set,
     "INSERT INTO meta(key, value) VALUES(?1, ?2) "
     "ON CONFLICT(key) DO UPDATE SET value = excluded.value"},
    {Q::sink_list, "SELECT id, name, last_acked_seq FROM sinks ORDER BY id"},
    {Q::sink_insert, "INSERT INTO sinks(name, added_ns) VALUES(?1, ?2)"},
    {Q::sink_set_acked, "UPDATE sinks SET last_acked_seq = ?2 WHERE id = ?1"},
    {Q::staged_insert,
     "INSERT INTO staged(created_ns, sample_count, bytes, records, codec) "
     "VALUES(?1, ?2, ?3, ?4, ?5)"},
    {Q::staged_read,
     "SELECT created_ns, sample_count, records, codec, bytes FROM staged ORDER BY id"},
    {Q::staged_clear, "DELETE FROM staged"},
    {Q::batch_insert,
     "INSERT INTO batches(seq, kind, created_ns, sample_count, bytes, payload, codec) "
     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
    {Q::batch_delete, "DELETE FROM batches WHERE seq = ?1 RETURNING bytes, sample_count"},
    {Q::batch_oldest_data,
     "SELECT seq, sample_count FROM batches WHERE kind = 0 ORDER BY seq LIMIT 1"},
    {Q::batch_oldest_created, "SELECT created_ns FROM batches ORDER BY seq LIMIT 1"},
    {Q::batch_get,
     "SELECT kind, created_ns, sample_count, payload, codec, bytes FROM batches "
     "WHERE seq = ?1"},
    {Q::delivery_insert, "INSERT INTO deliveries(sink_id, seq) VALUES(?1, ?2)"},
    {Q::delivery_delete, "DELETE FROM deliveries WHERE sink_id = ?1 AND seq = ?2"},
    {Q::delivery_sinks_of,
     "SELECT sink_id FROM deliveries WHERE sink_id IN (SELECT id FROM sinks) AND seq = ?1 "
     "ORDER BY sink_id"},
    {Q::delivery_delete_all_of,
     "DELETE FROM deliveries WHERE sink_id IN (SELECT id FROM sinks) AND seq = ?1"},
    {Q::delivery_any_left,
     "SELECT EXISTS(SELECT 1 FROM deliveries WHERE sink_id IN (SELECT id FROM sinks) "
     "AND seq = ?1)"},
    {Q::delivery_fail,
     "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3 "
     "WHERE sink_id = ?1 AND seq = ?2"},
    {Q::delivery_next_ready,
     "SELECT d.seq, d.attempts, d.last_error, b.kind, b.created_ns, b.sample_count, b.payload, "
     "b.codec, b.bytes "
     "FROM deliveries d JOIN batches b ON b.seq = d.seq "
     "WHERE d.sink_id = ?1 AND d.seq > ?2 ORDER BY d.seq LIMIT 1"},
    {Q::delivery_pending,
     "SELECT d.attempts, d.last_error FROM deliveries d WHERE d.sink_id = ?1 AND d.seq = ?2"},
    {Q::delivery_head,
     "SELECT seq, attempts, last_error FROM deliveries WHERE sink_id = ?1 "
     "ORDER BY seq LIMIT 1"},
    {Q::delivery_count, "SELECT count(*) FROM deliveries WHERE sink_id = ?1"},
    {Q::dead_insert,
     "INSERT INTO dead_letters(sink, seq, first_index, sample_count, http_status, message, "
     "time_ns, bytes, payload) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
    {Q::dead_oldest, "SELECT id, bytes FROM dead_letters ORDER BY id LIMIT 1"},
    {Q::dead_delete, "DELETE FROM dead_letters WHERE id = ?1"},
    // Only data batches refer to dictionary entries: a gap record left
    // unshipped must not keep entries alive (the cap counts them).
    {Q::batch_min_seq, "SELECT seq FROM batches WHERE kind = 0 ORDER BY seq LIMIT 1"},
    {Q::dict_insert,
     "INSERT INTO dictionary(first_key, count, entries, live, retired_seq) "
     "VALUES(?1, ?2, ?3, ?4, ?5)"},
    // The row holding key ?1, if any: rows never overlap, so it is the last
    // one starting at or below ?1 (one rowid lookup).
    {Q::dict_get,
     "SELECT first_key, entries FROM dictionary WHERE first_key = "
     "(SELECT max(first_key) FROM dictionary WHERE first_key <= ?1) "
     "AND ?1 < first_key + count"},
    {Q::dict_retire,
     "UPDATE dictionary SET live = live - 1, "
     "retired_seq = CASE WHEN live = 1 THEN ?2 ELSE NULL END "
     "WHERE first_key = (SELECT max(first_key) FROM dictionary "
     "WHERE first_key <= ?1) AND ?1 < first_key + count AND live > 0 "
     "RETURNING live"},
    {Q::dict_settle,
     "UPDATE dictionary SET retired_seq = ?1 "
     "WHERE live = 0 AND retired_seq IS NULL"},
    {Q::dict_prune, "DELETE FROM dictionary WHERE retired_seq < ?1 RETURNING length(entries)"},
};

static_assert(sql::lists_every_id_in_order(kSql), "kSql must list every Q once, in enum order");

}  // namespace

Result<Statements> prepare_statements(sql::Database& db) { return Statements::prepare(db, kSql); }

}  // namespace tally::queue
