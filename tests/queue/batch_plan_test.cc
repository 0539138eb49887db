// The pure batching and gap-grouping policies.
#include "batch_plan.h"

#include <gtest/gtest.h>

#include "gap.h"

namespace tally::queue {
namespace {

StagedChunk chunk(std::vector<std::string_view> lines, std::uint64_t created = 0) {
  return StagedChunk{created, std::move(lines)};
}

BatchLimits limits(std::uint32_t samples, std::uint64_t bytes) {
  BatchLimits l;
  l.max_samples = samples;
  l.max_bytes = bytes;
  return l;
}

TEST(BatchPlan, FormsFullBatchesAndKeepsTheRestStagedWithoutFlush) {
  const std::vector<StagedChunk> chunks = {chunk({"a", "b", "c"}), chunk({"d"})};
  const BatchPlan plan = plan_batches(chunks, limits(2, 1000), /*flush=*/false);
  ASSERT_EQ(plan.batches.size(), 2u);
  EXPECT_EQ(join_batch(chunks, plan.batches[0]), "a\nb");
  EXPECT_EQ(join_batch(chunks, plan.batches[1]), "c\nd");
  EXPECT_EQ(plan.rest, (ChunkPos{2, 0}));
  EXPECT_EQ(plan.rest_samples, 0u);
}

TEST(BatchPlan, AnAppendThatFitsInABatchIsNotSplitOverTwo) {
  // {d, e} fits a batch of 2 but not beside "c": "c" goes alone, early.
  const std::vector<StagedChunk> chunks = {chunk({"a", "b", "c"}), chunk({"d", "e"}), chunk({"f"})};
  const BatchPlan plan = plan_batches(chunks, limits(2, 1000), /*flush=*/false);
  ASSERT_EQ(plan.batches.size(), 3u);
  EXPECT_EQ(join_batch(chunks, plan.batches[0]), "a\nb");  // too big for one: split
  EXPECT_EQ(join_batch(chunks, plan.batches[1]), "c");
  EXPECT_EQ(join_batch(chunks, plan.batches[2]), "d\ne");
  EXPECT_EQ(plan.rest, (ChunkPos{2, 0}));
  EXPECT_EQ(plan.rest_samples, 1u);
  // The byte limit counts the same way.
  const std::vector<StagedChunk> by_bytes = {chunk({"aaaa"}), chunk({"bbbb", "cccc"})};
  const BatchPlan b = plan_batches(by_bytes, limits(100, 10), /*flush=*/true);
  ASSERT_EQ(b.batches.size(), 2u);
  EXPECT_EQ(join_batch(by_bytes, b.batches[0]), "aaaa");
  EXPECT_EQ(join_batch(by_bytes, b.batches[1]), "bbbb\ncccc");
}

TEST(BatchPlan, FlushFormsTheTrailingPartialBatch) {
  const std::vector<StagedChunk> chunks = {chunk({"a", "b", "c"})};
  const BatchPlan plan = plan_batches(chunks, limits(2, 1000), /*flush=*/true);
  ASSERT_EQ(plan.batches.size(), 2u);
  EXPECT_EQ(join_batch(chunks, plan.batches[1]), "c");
  EXPECT_EQ(plan.rest_samples, 0u);
}

TEST(BatchPlan, CutsBeforeTheByteLimitIsPassed) {
  // "aaaa\nbbbb" is 9 bytes; a third line would make 14 > 10.
  const std::vector<StagedChunk> chunks = {chunk({"aaaa", "bbbb", "cccc"})};
  const BatchPlan plan = plan_batches(chunks, limits(100, 10), true);
  ASSERT_EQ(plan.batches.size(), 2u);
  EXPECT_EQ(plan.batches[0].bytes, 9u);
  EXPECT_EQ(join_batch(chunks, plan.batches[0]), "aaaa\nbbbb");
  EXPECT_EQ(join_batch(chunks, plan.batches[1]), "cccc");
}

TEST(BatchPlan, ASampleLargerThanTheByteLimitIsABatchOfItsOwn) {
  const std::vector<StagedChunk> chunks = {chunk({"a", "0123456789abcdef", "b"})};
  const BatchPlan plan = plan_batches(chunks, limits(100, 8), true);
  ASSERT_EQ(plan.batches.size(), 3u);
  EXPECT_EQ(join_batch(chunks, plan.batches[1]), "0123456789abcdef");
}

TEST(BatchPlan, ExactlyReachingALimitFormsTheBatchWithoutFlush) {
  const std::vector<StagedChunk> chunks = {chunk({"a", "b"})};
  const BatchPlan plan = plan_batches(chunks, limits(2, 1000), false);
  ASSERT_EQ(plan.batches.size(), 1u);
  EXPECT_EQ(plan.rest_samples, 0u);
}

TEST(BatchPlan, SplitLinesIsTheInverseOfJoining) {
  EXPECT_EQ(split_lines("a\n\nb").size(), 3u);
  EXPECT_EQ(split_lines("").size(), 1u);
  EXPECT_EQ(split_lines("x")[0], "x");
}

TEST(GapPlan, SinksWithTheSameLossShareOneRecord) {
  const std::vector<EvictedBatch> evicted = {{5, 10, {1, 2}}, {6, 20, {1, 2}}};
  const auto gaps = plan_gaps(evicted);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].first_seq, 5u);
  EXPECT_EQ(gaps[0].last_seq, 6u);
  EXPECT_EQ(gaps[0].samples, 30u);
  EXPECT_EQ(gaps[0].sink_ids, (std::vector<std::int64_t>{1, 2}));
}

TEST(GapPlan, ASinkThatAckedPartOfTheRangeGetsOnlyWhatItLost) {
  // Sink 2 had acked batch 5.
  const std::vector<EvictedBatch> evicted = {{5, 10, {1}}, {6, 20, {1, 2}}};
  const auto gaps = plan_gaps(evicted);
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].first_seq, 5u);
  EXPECT_EQ(gaps[0].samples, 30u);
  EXPECT_EQ(gaps[0].sink_ids, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(gaps[1].first_seq, 6u);
  EXPECT_EQ(gaps[1].samples, 20u);
  EXPECT_EQ(gaps[1].sink_ids, (std::vector<std::int64_t>{2}));
}

TEST(GapPlan, RangesNeverSpanAMissingSeq) {
  const std::vector<EvictedBatch> evicted = {{5, 1, {1}}, {7, 1, {1}}};
  const auto gaps = plan_gaps(evicted);
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].last_seq, 5u);
  EXPECT_EQ(gaps[1].first_seq, 7u);
}

TEST(GapPayload, DecodesWhatItEncodes) {
  GapRecord gap = make_gap(GapReason::rejected, 9, 9, 3, "bad \"json\"", 123);
  gap.http_status = 400;
  gap.first_index = 7;
  const std::string payload = encode_gap(gap);
  EXPECT_EQ(payload.find('\n'), std::string::npos);
  EXPECT_EQ(payload.rfind(R"({"kind":"gap","first_seq":9,"last_seq":9,"samples":3,)", 0), 0u);
  const auto decoded = decode_gap(payload);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->reason, GapReason::rejected);
  EXPECT_EQ(decoded->samples, 3u);
  EXPECT_EQ(decoded->detail, "bad \"json\"");
  EXPECT_EQ(decoded->http_status, 400u);
  EXPECT_EQ(decoded->first_index, 7u);
  EXPECT_FALSE(decode_gap(R"({"t":"sample"})").has_value());
}

}  // namespace
}  // namespace tally::queue
