// The size cap: what is dropped, and how it is declared.
#include <gtest/gtest.h>

#include <map>

#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;

// Samples of 100 bytes, 10 per interval: a data batch is 1,009 bytes.
constexpr std::size_t kSampleSize = 100;
constexpr std::size_t kPerInterval = 10;

TEST(OutboxCap, GapRecordsCountExactlyTheSamplesDroppedOldestFirst) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.cap_bytes = 10'000;
  auto outbox = open_or_die(options);
  std::uint64_t appended = 0;
  for (int i = 0; i < 30; ++i) {
    auto r = outbox->append(make_samples(kPerInterval, fmt::format("i{}", i), kSampleSize), kT0);
    ASSERT_TRUE(r) << r.error().message();
    appended += kPerInterval;
    ASSERT_LE(outbox->stats(kT0)->stored_bytes, options.cap_bytes);
  }
  const auto batches = drain(*outbox, "collector");
  std::uint64_t received = 0, declared = 0, prev_seq = 0, next_expected = 1;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const Batch& b : batches) {
    EXPECT_GT(b.seq, prev_seq);
    prev_seq = b.seq;
    if (b.kind == Batch::Kind::gap) {
      ASSERT_TRUE(b.gap.has_value());
      EXPECT_EQ(b.gap->reason, GapReason::cap);
      declared += b.gap->samples;
      ranges.emplace_back(b.gap->first_seq, b.gap->last_seq);
    } else {
      received += b.sample_count;
    }
  }
  EXPECT_GT(declared, 0u);
  EXPECT_EQ(received + declared, appended);
  // Oldest first: the first gap starts at seq 1, and every seq is either
  // received or inside a declared range.
  ASSERT_FALSE(ranges.empty());
  EXPECT_EQ(ranges.front().first, 1u);
  std::map<std::uint64_t, bool> accounted;
  for (const Batch& b : batches) accounted[b.seq] = true;
  for (const auto& [first, last] : ranges) {
    for (auto s = first; s <= last; ++s) accounted[s] = true;
  }
  for (; accounted.count(next_expected) != 0; ++next_expected) {
  }
  EXPECT_EQ(next_expected, outbox->stats(kT0)->last_seq + 1);  // no hole
  EXPECT_EQ(outbox->stats(kT0)->gaps[static_cast<int>(GapReason::cap)].samples, declared);
}

TEST(OutboxCap, GapGoesOnlyToTheSinkThatLostTheData) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db", {"collector", "vm"});
  options.cap_bytes = 5'000;  // four data batches fit
  auto outbox = open_or_die(options);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(outbox->append(make_samples(kPerInterval, "a", kSampleSize), kT0));
  }
  // collector has everything so far; vm has nothing.
  ASSERT_EQ(drain(*outbox, "collector").size(), 4u);
  ASSERT_TRUE(outbox->append(make_samples(kPerInterval, "b", kSampleSize), kT0));  // seq 5

  const auto vm = drain(*outbox, "vm");
  const auto collector = drain(*outbox, "collector");
  ASSERT_EQ(collector.size(), 1u);
  EXPECT_EQ(collector[0].kind, Batch::Kind::samples);
  EXPECT_EQ(collector[0].seq, 6u);

  std::uint64_t vm_declared = 0;
  std::uint64_t vm_received = 0;
  for (const Batch& b : vm) {
    if (b.gap) {
      EXPECT_EQ(b.gap->first_seq, 1u);
      vm_declared += b.gap->samples;
    } else {
      vm_received += b.sample_count;
    }
  }
  EXPECT_EQ(vm_declared, kPerInterval);  // batch 1 was evicted
  EXPECT_EQ(vm_received + vm_declared, 5 * kPerInterval);
  EXPECT_EQ(vm.size(), 5u);  // batches 2, 3, 4, the gap (5) and 6
}

TEST(OutboxCap, PartialAckSplitsTheDeclaredRangesPerSink) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db", {"collector", "vm"});
  options.cap_bytes = 4'100;  // four batches fit
  auto outbox = open_or_die(options);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(outbox->append(make_samples(kPerInterval, "a", kSampleSize), kT0));
  }
  ASSERT_TRUE(outbox->ack("collector", 1));
  // A 2-batch interval: evicts batches 1 (vm only) and 2 (both sinks).
  ASSERT_TRUE(outbox->append(make_samples(2 * kPerInterval, "b", kSampleSize), kT0));

  auto gaps_of = [&](std::string_view sink) {
    std::vector<GapRecord> gaps;
    for (const Batch& b : drain(*outbox, sink)) {
      if (b.gap) gaps.push_back(*b.gap);
    }
    return gaps;
  };
  const auto collector = gaps_of("collector");
  const auto vm = gaps_of("vm");
  ASSERT_EQ(collector.size(), 1u);
  EXPECT_EQ(collector[0].first_seq, 2u);
  EXPECT_GE(collector[0].last_seq, 2u);
  ASSERT_EQ(vm.size(), 1u);
  EXPECT_EQ(vm[0].first_seq, 1u);
  EXPECT_EQ(vm[0].last_seq, collector[0].last_seq);
  EXPECT_EQ(vm[0].samples, collector[0].samples + kPerInterval);
  auto stats = outbox->stats(kT0);
  // Samples are counted once even though both sinks lost batch 2.
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::cap)].samples, vm[0].samples);
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::cap)].records, 2u);
}

TEST(OutboxCap, AnIntervalLargerThanTheCapFailsAndIsCounted) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.cap_bytes = 1'000;
  auto outbox = open_or_die(options);
  auto r = outbox->append(make_samples(20, "a", kSampleSize), kT0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("do not fit under the outbox cap"), std::string::npos);
  EXPECT_EQ(outbox->stats(kT0)->samples_lost_append, 20u);
  EXPECT_EQ(outbox->stats(kT0)->stored_bytes, 0u);
}

}  // namespace
}  // namespace tally::queue
