// Permanent rejections: dead letters and rejected gap records.
#include <gtest/gtest.h>

#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;

TEST(OutboxReject, RejectedBatchIsDeadLetteredAndDeclaredToThatSinkOnly) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector", "vm"}));
  const auto samples = make_samples(3, "a");
  ASSERT_TRUE(outbox->append(samples, kT0));
  ASSERT_TRUE(outbox->reject("collector", 1, 400, "schema mismatch", kT0 + kSecond));

  EXPECT_EQ(query(dir / "outbox.db",
                  "SELECT sink || ' ' || seq || ' ' || http_status || ' ' || message "
                  "FROM dead_letters"),
            "collector 1 400 schema mismatch");
  EXPECT_EQ(query(dir / "outbox.db", "SELECT payload FROM dead_letters"),
            samples[0] + "\n" + samples[1] + "\n" + samples[2]);

  const auto collector = drain(*outbox, "collector");
  ASSERT_EQ(collector.size(), 1u);
  EXPECT_EQ(collector[0].seq, 2u);
  ASSERT_EQ(collector[0].kind, Batch::Kind::gap);
  ASSERT_TRUE(collector[0].gap.has_value());
  EXPECT_EQ(collector[0].gap->reason, GapReason::rejected);
  EXPECT_EQ(collector[0].gap->first_seq, 1u);
  EXPECT_EQ(collector[0].gap->last_seq, 1u);
  EXPECT_EQ(collector[0].gap->samples, 3u);
  EXPECT_EQ(collector[0].gap->http_status, 400u);
  EXPECT_EQ(collector[0].gap->detail, "schema mismatch");
  EXPECT_NE(collector[0].payload.find(R"("reason":"rejected")"), std::string::npos);

  // vm still gets the data batch, and no gap.
  const auto vm = drain(*outbox, "vm");
  ASSERT_EQ(vm.size(), 1u);
  EXPECT_EQ(vm[0].seq, 1u);

  auto stats = outbox->stats(kT0);
  EXPECT_EQ(stats->dead_letters, 1u);
  EXPECT_EQ(stats->dead_letter_bytes, vm[0].payload.size());
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::rejected)].records, 1u);
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::rejected)].samples, 3u);
  EXPECT_EQ(stats->pending_batches, 0u);
}

TEST(OutboxReject, RejectedSamplesGoToDeadLettersAndTheBatchStaysPending) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  const auto samples = make_samples(10, "a");
  ASSERT_TRUE(outbox->append(samples, kT0));
  ASSERT_TRUE(outbox->reject_samples("collector", 1, 4, 2, 422, "bad value", kT0));
  EXPECT_EQ(query(dir / "outbox.db", "SELECT payload FROM dead_letters"),
            samples[4] + "\n" + samples[5]);
  EXPECT_EQ(query(dir / "outbox.db", "SELECT first_index || ',' || sample_count FROM dead_letters"),
            "4,2");

  auto head = outbox->next_ready("collector");
  ASSERT_TRUE(head->has_value());
  EXPECT_EQ((*head)->seq, 1u);  // still pending until acked
  ASSERT_TRUE(outbox->ack("collector", 1));
  auto gap = outbox->next_ready("collector");
  ASSERT_TRUE(gap->has_value());
  ASSERT_TRUE((*gap)->gap.has_value());
  EXPECT_EQ((*gap)->gap->samples, 2u);
  EXPECT_EQ((*gap)->gap->first_index, 4u);
  EXPECT_EQ((*gap)->gap->http_status, 422u);
}

TEST(OutboxReject, RejectingSamplesOutsideTheBatchIsAnErrorAndChangesNothing) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  ASSERT_TRUE(outbox->append(make_samples(3, "a"), kT0));
  auto r = outbox->reject_samples("collector", 1, 2, 2, 400, "x", kT0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("not within"), std::string::npos);
  EXPECT_EQ(outbox->stats(kT0)->dead_letters, 0u);
  EXPECT_EQ(outbox->stats(kT0)->last_seq, 1u);
}

TEST(OutboxReject, RejectedGapIsDeadLetteredWithoutANewGap) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0));
  ASSERT_TRUE(outbox->reject("collector", 1, 400, "no", kT0));
  ASSERT_TRUE(outbox->reject("collector", 2, 400, "no gaps either", kT0));
  EXPECT_FALSE(outbox->next_ready("collector")->has_value());
  EXPECT_EQ(outbox->stats(kT0)->dead_letters, 2u);
  EXPECT_EQ(outbox->stats(kT0)->last_seq, 2u);
}

TEST(OutboxReject, DeadLettersAreTheFirstThingDiscardedForRoom) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.cap_bytes = 6000;
  auto outbox = open_or_die(options);
  ASSERT_TRUE(outbox->append(make_samples(8, "a"), kT0));  // ~2 KB
  ASSERT_TRUE(outbox->reject("collector", 1, 400, "no", kT0));
  ASSERT_TRUE(outbox->append(make_samples(8, "b"), kT0));  // seq 3
  ASSERT_TRUE(outbox->append(make_samples(8, "c"), kT0));  // needs room: the dead letter goes
  auto stats = outbox->stats(kT0);
  EXPECT_EQ(stats->dead_letters, 0u);
  EXPECT_EQ(stats->dead_letters_discarded, 1u);
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::cap)].records, 0u);
  EXPECT_LE(stats->stored_bytes, options.cap_bytes);
}

}  // namespace
}  // namespace tally::queue
