#include "state.h"

namespace tally::queue {
namespace {

constexpr std::string_view kCounterKeys[] = {
    "last_seq",
    "gap_records.cap",
    "gap_samples.cap",
    "gap_records.rejected",
    "gap_samples.rejected",
    "gap_records.append_failed",
    "gap_samples.append_failed",
    "dead_letters_discarded",
    "quarantine_events",
    "gap_records.outbox_lost",
    "gap_samples.outbox_lost",
};
static_assert(std::size(kCounterKeys) == kCounterCount);

}  // namespace

std::string_view counter_key(Counter counter) {
  return kCounterKeys[static_cast<std::size_t>(counter)];
}

Counter gap_records_counter(GapReason reason) {
  switch (reason) {
    case GapReason::cap:
      return Counter::gap_records_cap;
    case GapReason::rejected:
      return Counter::gap_records_rejected;
    case GapReason::append_failed:
      return Counter::gap_records_append_failed;
    case GapReason::outbox_lost:
      return Counter::gap_records_outbox_lost;
  }
  return Counter::gap_records_cap;
}

Counter gap_samples_counter(GapReason reason) {
  switch (reason) {
    case GapReason::cap:
      return Counter::gap_samples_cap;
    case GapReason::rejected:
      return Counter::gap_samples_rejected;
    case GapReason::append_failed:
      return Counter::gap_samples_append_failed;
    case GapReason::outbox_lost:
      return Counter::gap_samples_outbox_lost;
  }
  return Counter::gap_samples_cap;
}

}  // namespace tally::queue
