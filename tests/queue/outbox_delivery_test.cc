// Per-sink delivery: next_ready, ack, fail, and what survives a reopen.
#include <gtest/gtest.h>

#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;

TEST(OutboxDelivery, SinksProgressIndependently) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector", "vm"}));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));
  EXPECT_EQ(drain(*outbox, "collector").size(), 5u);
  EXPECT_FALSE(outbox->next_ready("collector")->has_value());
  // vm still has everything, starting at the head.
  auto head = outbox->next_ready("vm");
  ASSERT_TRUE(head->has_value());
  EXPECT_EQ((*head)->seq, 1u);
  auto stats = outbox->stats(kT0);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->pending_batches, 5u);
  EXPECT_EQ(stats->sinks[0].name, "collector");
  EXPECT_EQ(stats->sinks[0].pending, 0u);
  EXPECT_EQ(stats->sinks[0].last_acked_seq, 5u);
  EXPECT_EQ(stats->sinks[1].pending, 5u);
  EXPECT_EQ(stats->sinks[1].oldest_pending_seq, 1u);
}

TEST(OutboxDelivery, BatchIsRemovedOnlyWhenEverySinkIsDone) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector", "vm"}));
  ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));
  ASSERT_TRUE(outbox->ack("collector", 1));
  EXPECT_EQ(read_batches(dir / "outbox.db").size(), 1u);
  ASSERT_TRUE(outbox->ack("vm", 1));
  EXPECT_EQ(read_batches(dir / "outbox.db").size(), 0u);
  EXPECT_EQ(outbox->stats(kT0)->pending_batches, 0u);
  EXPECT_EQ(outbox->stats(kT0)->pending_bytes, 0u);
}

TEST(OutboxDelivery, AckingTwiceIsANoOp) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0));
  ASSERT_TRUE(outbox->ack("collector", 1));
  EXPECT_TRUE(outbox->ack("collector", 1));
  EXPECT_EQ(outbox->stats(kT0)->sinks[0].last_acked_seq, 1u);
}

TEST(OutboxDelivery, UnknownSinkIsAnErrorNamingIt) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  auto r = outbox->next_ready("nope");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("unknown sink \"nope\""), std::string::npos);
}

// Retries are paced by the sink's backoff: fail() records the attempt for
// status and leaves the batch at the head, where the next try finds it.
TEST(OutboxDelivery, FailRecordsAttemptsAndErrorAndKeepsTheBatchAtTheHead) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0));
  ASSERT_TRUE(outbox->append(make_samples(1, "b"), kT0));
  ASSERT_TRUE(outbox->fail("collector", 1, "connection refused"));
  ASSERT_TRUE(outbox->fail("collector", 1, "HTTP 503"));

  auto batch = outbox->next_ready("collector");
  ASSERT_TRUE(batch->has_value());
  EXPECT_EQ((*batch)->seq, 1u);
  EXPECT_EQ((*batch)->attempts, 2u);
  EXPECT_EQ((*batch)->last_error, "HTTP 503");
  auto stats = outbox->stats(kT0);
  EXPECT_EQ(stats->sinks[0].head_attempts, 2u);
  EXPECT_EQ(stats->sinks[0].head_last_error, "HTTP 503");
}

TEST(OutboxDelivery, FailOnABatchThatIsNotPendingIsAnError) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  auto r = outbox->fail("collector", 42, "x");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("batch 42"), std::string::npos);
}

TEST(OutboxDelivery, AgentIdIsAUuidV4KeptAcrossReopen) {
  ScratchDir dir;
  std::string id;
  {
    auto outbox = open_or_die(options_for(dir / "outbox.db"));
    id = outbox->agent_id();
  }
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);
  auto reopened = open_or_die(options_for(dir / "outbox.db"));
  EXPECT_EQ(reopened->agent_id(), id);
  EXPECT_EQ(reopened->stats(kT0)->agent_id, id);
  ScratchDir other;
  EXPECT_NE(open_or_die(options_for(other / "outbox.db"))->agent_id(), id);
}

TEST(OutboxDelivery, SeqIsNeverReusedAfterEverythingIsAckedAndAfterReopen) {
  ScratchDir dir;
  {
    auto outbox = open_or_die(options_for(dir / "outbox.db"));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0));
    EXPECT_EQ(drain(*outbox, "collector").size(), 3u);
    EXPECT_EQ(read_batches(dir / "outbox.db").size(), 0u);
    EXPECT_EQ(outbox->append(make_samples(1, "b"), kT0)->first_seq, 4u);
    drain(*outbox, "collector");
  }
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  EXPECT_EQ(outbox->stats(kT0)->last_seq, 4u);
  EXPECT_EQ(outbox->append(make_samples(1, "c"), kT0)->first_seq, 5u);
}

TEST(OutboxDelivery, NewSinkStartsWithBatchesFormedAfterItWasAdded) {
  ScratchDir dir;
  {
    auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector"}));
    ASSERT_TRUE(outbox->append(make_samples(1, "old"), kT0));
  }
  auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector", "vm"}));
  ASSERT_TRUE(outbox->append(make_samples(1, "new"), kT0));
  const auto vm = drain(*outbox, "vm");
  ASSERT_EQ(vm.size(), 1u);
  EXPECT_EQ(vm[0].seq, 2u);
  EXPECT_EQ(drain(*outbox, "collector").size(), 2u);
}

TEST(OutboxDelivery, RemovedSinkHasItsDeliveriesDroppedAtOpen) {
  ScratchDir dir;
  {
    auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector", "vm"}));
    ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0));
    ASSERT_TRUE(outbox->append(make_samples(1, "b"), kT0));
    ASSERT_TRUE(outbox->ack("collector", 1));
  }
  auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector"}));
  // Batch 1 was only waiting for vm: gone. Batch 2 still waits for collector.
  const auto batches = read_batches(dir / "outbox.db");
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].seq, 2u);
  EXPECT_EQ(outbox->stats(kT0)->sinks.size(), 1u);
  EXPECT_EQ(outbox->stats(kT0)->pending_batches, 1u);
  EXPECT_EQ(query(dir / "outbox.db", "SELECT count(*) FROM deliveries"), "1");
}

TEST(OutboxDelivery, AckedStateAndAttemptsSurviveReopen) {
  ScratchDir dir;
  {
    auto outbox = open_or_die(options_for(dir / "outbox.db"));
    ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0));
    ASSERT_TRUE(outbox->append(make_samples(1, "b"), kT0));
    ASSERT_TRUE(outbox->ack("collector", 1));
    ASSERT_TRUE(outbox->fail("collector", 2, "boom"));
  }
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  auto stats = outbox->stats(kT0 + 3 * kSecond);
  EXPECT_EQ(stats->sinks[0].last_acked_seq, 1u);
  EXPECT_EQ(stats->sinks[0].head_attempts, 1u);
  EXPECT_EQ(stats->oldest_pending_age_ns, 3 * kSecond);
  EXPECT_EQ((*outbox->next_ready("collector"))->last_error, "boom");
}

}  // namespace
}  // namespace tally::queue
