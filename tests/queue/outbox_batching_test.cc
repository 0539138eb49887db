// How appended samples become numbered batches.
#include <gtest/gtest.h>

#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;

TEST(OutboxBatching, EveryAppendFormsABatchWhenMaxAgeIsZero) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  const auto samples = make_samples(3, "a");
  auto r = outbox->append(samples, kT0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->batches_formed, 1u);
  EXPECT_EQ(r->first_seq, 1u);
  EXPECT_EQ(r->last_seq, 1u);
  auto batch = outbox->next_ready("collector");
  ASSERT_TRUE(batch && batch->has_value());
  EXPECT_EQ((*batch)->seq, 1u);
  EXPECT_EQ((*batch)->kind, Batch::Kind::samples);
  EXPECT_EQ((*batch)->sample_count, 3u);
  EXPECT_EQ((*batch)->payload, samples[0] + "\n" + samples[1] + "\n" + samples[2]);
  EXPECT_EQ((*batch)->created_ns, kT0);
}

TEST(OutboxBatching, SampleLimitSplitsAnIntervalIntoSeveralBatches) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_samples = 4;
  auto outbox = open_or_die(options);
  const auto samples = make_samples(10, "a");
  auto r = outbox->append(samples, kT0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->batches_formed, 3u);
  EXPECT_EQ(r->first_seq, 1u);
  EXPECT_EQ(r->last_seq, 3u);
  const auto batches = drain(*outbox, "collector");
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].sample_count, 4u);
  EXPECT_EQ(batches[1].sample_count, 4u);
  EXPECT_EQ(batches[2].sample_count, 2u);
  EXPECT_EQ(lines_of(batches[1].payload)[0], samples[4]);
  EXPECT_EQ(lines_of(batches[2].payload)[1], samples[9]);
}

TEST(OutboxBatching, ByteLimitKeepsEveryPayloadWithinIt) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_bytes = 1000;  // three 250-byte samples and separators fit, four do not
  auto outbox = open_or_die(options);
  ASSERT_TRUE(outbox->append(make_samples(10, "a"), kT0));
  const auto batches = drain(*outbox, "collector");
  ASSERT_EQ(batches.size(), 4u);
  std::uint32_t total = 0;
  for (const Batch& b : batches) {
    EXPECT_LE(b.payload.size(), 1000u);
    total += b.sample_count;
  }
  EXPECT_EQ(batches[0].sample_count, 3u);
  EXPECT_EQ(total, 10u);
}

TEST(OutboxBatching, OversizeSampleBecomesABatchOfItsOwn) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_bytes = 100;
  auto outbox = open_or_die(options);
  ASSERT_TRUE(outbox->append(make_samples(2, "big", 300), kT0));
  const auto batches = drain(*outbox, "collector");
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].payload.size(), 300u);
}

TEST(OutboxBatching, AgeLimitStagesSamplesUntilTheOldestIsOldEnough) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_age_ns = 10 * kSecond;
  auto outbox = open_or_die(options);
  const auto first = make_samples(2, "a");
  const auto second = make_samples(3, "b");
  auto r1 = outbox->append(first, kT0);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->batches_formed, 0u);
  ASSERT_TRUE(outbox->append(second, kT0 + 5 * kSecond));
  EXPECT_FALSE(outbox->next_ready("collector")->has_value());
  EXPECT_EQ(outbox->stats(kT0)->staged_samples, 5u);

  EXPECT_EQ(outbox->append(make_samples(1, "c"), kT0 + 9 * kSecond)->batches_formed, 0u);
  EXPECT_EQ(outbox->append(make_samples(1, "d"), kT0 + 10 * kSecond)->batches_formed, 1u);
  const auto batches = drain(*outbox, "collector");
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].sample_count, 7u);
  EXPECT_EQ(lines_of(batches[0].payload)[0], first[0]);
  EXPECT_EQ(lines_of(batches[0].payload)[4], second[2]);
  EXPECT_EQ(outbox->stats(kT0)->staged_samples, 0u);
}

TEST(OutboxBatching, FormAllFormsStagedSamplesBeforeTheirAgeWithTheTimeGiven) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_age_ns = 3600 * kSecond;
  auto outbox = open_or_die(options);
  EXPECT_EQ(*outbox->form_all(kT0), 0) << "nothing staged";
  ASSERT_TRUE(outbox->append(make_samples(3, "a"), kT0));
  EXPECT_EQ(*outbox->form_all(kT0 + kSecond), 1);
  EXPECT_EQ(outbox->stats(kT0)->staged_samples, 0u);
  const auto batches = drain(*outbox, "collector");
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].sample_count, 3u);
  EXPECT_EQ(batches[0].created_ns, kT0 + kSecond);
}

TEST(OutboxBatching, AppendFormsTheStagedBatchOnceTheAgeLimitHasPassed) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_age_ns = 10 * kSecond;
  auto outbox = open_or_die(options);
  ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));
  auto r = outbox->append(make_samples(2, "b"), kT0 + 11 * kSecond);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->batches_formed, 1u);
  const auto batches = drain(*outbox, "collector");
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].sample_count, 4u);
}

TEST(OutboxBatching, SampleLimitFormsStagedBatchesBeforeTheAgeLimit) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_age_ns = 3600 * kSecond;
  options.batch.max_samples = 5;
  auto outbox = open_or_die(options);
  ASSERT_TRUE(outbox->append(make_samples(3, "a"), kT0));
  // 3 more would pass 5: the first append is formed alone, the second is
  // kept whole (an interval is not split over two batches).
  auto r = outbox->append(make_samples(3, "b"), kT0 + kSecond);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->batches_formed, 1u);
  EXPECT_EQ(outbox->stats(kT0)->staged_samples, 3u);
  // The staged ones keep the age of their own append, not the first one's.
  EXPECT_EQ(outbox->append(make_samples(1, "c"), kT0 + 3600 * kSecond)->batches_formed, 0u);
  EXPECT_EQ(outbox->append(make_samples(1, "d"), kT0 + 3601 * kSecond)->batches_formed, 1u);
  const auto batches = drain(*outbox, "collector");
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].sample_count, 3u);
  EXPECT_EQ(batches[1].sample_count, 5u);
}

TEST(OutboxBatching, StagedSamplesSurviveAReopen) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_age_ns = 10 * kSecond;
  {
    auto outbox = open_or_die(options);
    ASSERT_TRUE(outbox->append(make_samples(4, "a"), kT0));
  }
  auto outbox = open_or_die(options);
  EXPECT_EQ(outbox->stats(kT0)->staged_samples, 4u);
  EXPECT_EQ(outbox->append(make_samples(1, "b"), kT0 + 10 * kSecond)->batches_formed, 1u);
  EXPECT_EQ(drain(*outbox, "collector").at(0).sample_count, 5u);
}

TEST(OutboxBatching, WithCompressionOffPayloadsAreStoredAsTheyAreAndReadBackTheSame) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.compress = false;
  options.batch.max_age_ns = 10;  // the first append is staged, the second forms
  auto outbox = open_or_die(options);
  const auto first = make_samples(3, "a");
  const auto second = make_samples(2, "b");
  ASSERT_TRUE(outbox->append(first, kT0));
  EXPECT_EQ(query(dir / "outbox.db", "SELECT codec || ':' || CAST(records AS TEXT) FROM staged"),
            "0:" + first[0] + "\n" + first[1] + "\n" + first[2]);
  ASSERT_TRUE(outbox->append(second, kT0 + 10));
  EXPECT_EQ(query(dir / "outbox.db", "SELECT group_concat(codec) FROM batches"), "0");
  EXPECT_EQ(query(dir / "outbox.db", "SELECT CAST(payload AS TEXT) FROM batches"),
            first[0] + "\n" + first[1] + "\n" + first[2] + "\n" + second[0] + "\n" + second[1]);
  auto batch = outbox->next_ready("collector");
  ASSERT_TRUE(batch && batch->has_value());
  EXPECT_EQ((*batch)->payload,
            first[0] + "\n" + first[1] + "\n" + first[2] + "\n" + second[0] + "\n" + second[1]);
  // With compression on, the same bytes are stored as a zstd frame.
  ScratchDir other;
  auto compressed_options = options_for(other / "outbox.db");
  compressed_options.compress = true;
  auto compressed = open_or_die(compressed_options);
  ASSERT_TRUE(compressed->append(first, kT0));
  EXPECT_EQ(query(other / "outbox.db", "SELECT group_concat(codec) FROM batches"), "1");
}

TEST(OutboxBatching, SampleWithANewlineIsRefusedAndCounted) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  const std::vector<std::string> bad = {"{\"a\":1}", "{\"b\":\n2}"};
  auto r = outbox->append(bad, kT0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("sample 1 contains a newline"), std::string::npos);
  EXPECT_EQ(outbox->stats(kT0)->samples_lost_append, 2u);
}

}  // namespace
}  // namespace tally::queue
