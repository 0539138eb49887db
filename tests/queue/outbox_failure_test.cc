// A failed commit changes nothing, through the failure-injection seam.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;

TEST(OutboxFailure, FailedAppendStoresNothingAndItsSamplesAreDeclaredByTheNextAppend) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector", "vm"}));
  ASSERT_TRUE(outbox->append(make_samples(5, "ok"), kT0));
  outbox->fail_next_commit_for_testing(SQLITE_FULL);
  auto failed = outbox->append(make_samples(7, "lost"), kT0);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message().find("append 7 samples"), std::string::npos);
  EXPECT_NE(failed.error().message().find("database or disk is full"), std::string::npos);
  EXPECT_EQ(read_batches(dir / "outbox.db").size(), 1u);
  EXPECT_EQ(outbox->stats(kT0)->samples_lost_append, 7u);
  EXPECT_EQ(outbox->stats(kT0)->last_seq, 1u);

  auto r = outbox->append(make_samples(3, "back"), kT0 + kSecond);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->batches_formed, 2u);
  EXPECT_EQ(r->first_seq, 3u);  // seq 2 is the gap
  for (const char* sink : {"collector", "vm"}) {
    const auto batches = drain(*outbox, sink);
    ASSERT_EQ(batches.size(), 3u);
    ASSERT_TRUE(batches[1].gap.has_value());
    EXPECT_EQ(batches[1].gap->reason, GapReason::append_failed);
    EXPECT_EQ(batches[1].gap->samples, 7u);
    EXPECT_EQ(batches[1].gap->first_seq, 0u);
    EXPECT_EQ(batches[1].gap->time_ns, kT0 + kSecond);
  }
  auto stats = outbox->stats(kT0);
  EXPECT_EQ(stats->samples_lost_append, 7u);
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::append_failed)].records, 1u);
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::append_failed)].samples, 7u);
}

TEST(OutboxFailure, FailedAckLeavesTheBatchPending) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0));
  outbox->fail_next_commit_for_testing(SQLITE_IOERR);
  auto r = outbox->ack("collector", 1);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("ack batch 1 for sink collector"), std::string::npos);
  EXPECT_NE(r.error().message().find((dir / "outbox.db").string()), std::string::npos);
  EXPECT_EQ((*outbox->next_ready("collector"))->seq, 1u);
  auto stats = outbox->stats(kT0);
  EXPECT_EQ(stats->pending_batches, 1u);
  EXPECT_EQ(stats->sinks[0].last_acked_seq, 0u);
  EXPECT_TRUE(outbox->ack("collector", 1));
}

TEST(OutboxFailure, FailedFailLeavesAttemptsUnchanged) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0));
  outbox->fail_next_commit_for_testing(SQLITE_FULL);
  ASSERT_FALSE(outbox->fail("collector", 1, "boom"));
  auto head = outbox->next_ready("collector");
  ASSERT_TRUE(head->has_value());
  EXPECT_EQ((*head)->attempts, 0u);
  EXPECT_EQ((*head)->last_error, "");
}

TEST(OutboxFailure, FailedRejectLeavesNoDeadLetterAndNoGap) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));
  outbox->fail_next_commit_for_testing(SQLITE_FULL);
  ASSERT_FALSE(outbox->reject("collector", 1, 400, "bad", kT0));
  auto stats = outbox->stats(kT0);
  EXPECT_EQ(stats->dead_letters, 0u);
  EXPECT_EQ(stats->last_seq, 1u);
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::rejected)].records, 0u);
  EXPECT_EQ(query(dir / "outbox.db", "SELECT count(*) FROM dead_letters"), "0");
  EXPECT_EQ((*outbox->next_ready("collector"))->seq, 1u);
}

}  // namespace
}  // namespace tally::queue
