#include "collector/saturating_sum.h"

#include <sqlite3.h>

#include <cstdint>
#include <limits>

namespace tally::collector {

namespace {

// sqlite3_aggregate_context() zero-fills it on the first step.
struct Accumulator {
  std::int64_t sum;
  int saturated;  // -1 below, +1 above the range; then sum is the bound
};

void step(sqlite3_context* context, int /*argc*/, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
  auto* acc = static_cast<Accumulator*>(sqlite3_aggregate_context(context, sizeof(Accumulator)));
  if (acc == nullptr) return sqlite3_result_error_nomem(context);
  if (acc->saturated != 0) return;
  const std::int64_t value = sqlite3_value_int64(argv[0]);
  if (__builtin_add_overflow(acc->sum, value, &acc->sum)) {
    acc->saturated = value > 0 ? 1 : -1;
    acc->sum = value > 0 ? std::numeric_limits<std::int64_t>::max()
                         : std::numeric_limits<std::int64_t>::min();
  }
}

void final(sqlite3_context* context) {
  auto* acc = static_cast<Accumulator*>(sqlite3_aggregate_context(context, 0));
  sqlite3_result_int64(context, acc == nullptr ? 0 : acc->sum);
}

}  // namespace

Status register_saturating_sum(sql::Database& db) {
  const int rc = sqlite3_create_function_v2(db.handle(), "saturating_sum", 1,
                                            SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, nullptr,
                                            &step, &final, nullptr);
  if (rc != SQLITE_OK) return db.error("register saturating_sum() on", rc);
  return ok_status();
}

}  // namespace tally::collector
