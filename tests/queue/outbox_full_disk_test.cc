// A real full disk (a 2 MiB tmpfs): appends fail clearly, nothing stored is
// damaged, and once space returns the lost samples are declared exactly; an
// outbox opened on a full disk still ships what it holds.
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "files.h"
#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;
namespace fs = std::filesystem;

class OutboxFullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_point_ = scratch_.path() / "tmpfs";
    fs::create_directories(mount_point_);
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=2m") != 0) {
      GTEST_SKIP() << "cannot mount a 2 MiB tmpfs at " << mount_point_ << " ("
                   << std::strerror(errno) << "); this test needs root";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_point_.c_str(), MNT_DETACH);
  }

  ScratchDir scratch_;
  fs::path mount_point_;
  bool mounted_ = false;
};

TEST_F(OutboxFullDisk, AppendFailsClearlyWhenFullAndRecoversWithAnExactGap) {
  const fs::path filler = mount_point_ / "filler";
  {
    std::ofstream out(filler, std::ios::binary);
    out << std::string(1024 * 1024, 'f');
    ASSERT_TRUE(out.good());
  }
  const fs::path db = mount_point_ / "outbox.db";
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);

  // Fill the disk. Ack the first few batches so both acked and pending
  // batches exist when it fills.
  std::map<std::uint64_t, std::string> expected;  // pending seq -> payload
  std::string first_error;
  for (int i = 0; i < 20000 && first_error.empty(); ++i) {
    const auto samples = make_samples(20, fmt::format("i{}", i));
    auto r = outbox->append(samples, kT0);
    if (!r) {
      first_error = r.error().message();
      break;
    }
    ASSERT_EQ(r->first_seq, r->last_seq);
    std::string payload;
    for (const auto& s : samples) payload += (payload.empty() ? "" : "\n") + s;
    expected[r->first_seq] = payload;
    if (i < 3) {
      ASSERT_TRUE(outbox->ack("collector", r->first_seq));
      expected.erase(r->first_seq);
    }
  }
  ASSERT_FALSE(first_error.empty()) << "2 MiB never filled up";
  EXPECT_NE(first_error.find(db.string()), std::string::npos) << first_error;
  EXPECT_NE(first_error.find("disk is full"), std::string::npos) << first_error;
  std::uint64_t lost = 20;
  for (int i = 0; i < 2; ++i) {
    auto r = outbox->append(make_samples(7, "while-full"), kT0);
    ASSERT_FALSE(r) << "append succeeded on a full disk";
    lost += 7;
  }
  EXPECT_EQ(outbox->stats(kT0)->samples_lost_append, lost);

  // Nothing stored is damaged.
  EXPECT_EQ(integrity_check(db), "ok");
  auto stored = read_batches(db);
  ASSERT_EQ(stored.size(), expected.size());
  for (const RawBatch& b : stored) EXPECT_EQ(b.payload, expected.at(b.seq)) << "seq " << b.seq;

  // Space comes back; the next append succeeds and declares the loss first.
  fs::remove(filler);
  const auto after = make_samples(5, "after");
  auto r = outbox->append(after, kT0 + kSecond);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->batches_formed, 2u);
  EXPECT_EQ(r->first_seq, expected.rbegin()->first + 2);

  stored = read_batches(db);
  ASSERT_EQ(stored.size(), expected.size() + 2);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(stored[i].payload, expected.at(stored[i].seq));
  }
  const RawBatch& gap_row = stored[expected.size()];
  ASSERT_EQ(gap_row.kind, 1);
  EXPECT_NE(gap_row.payload.find(fmt::format(R"("first_seq":0,"last_seq":0,"samples":{},)"
                                             R"("reason":"append_failed")",
                                             lost)),
            std::string::npos)
      << gap_row.payload;
  EXPECT_EQ(stored.back().sample_count, after.size());
  auto stats = outbox->stats(kT0);
  EXPECT_EQ(stats->samples_lost_append, lost);
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::append_failed)].records, 1u);
  EXPECT_EQ(stats->gaps[static_cast<int>(GapReason::append_failed)].samples, lost);

  // The shipper sees the gap as a batch in order, after what was stored.
  for (const auto& [seq, payload] : expected) ASSERT_TRUE(outbox->ack("collector", seq));
  auto gap = outbox->next_ready("collector");
  ASSERT_TRUE(gap && gap->has_value());
  ASSERT_TRUE((*gap)->gap.has_value());
  EXPECT_EQ((*gap)->gap->reason, GapReason::append_failed);
  EXPECT_EQ((*gap)->gap->samples, lost);
  outbox.reset();
  EXPECT_EQ(integrity_check(db), "ok");
}

TEST_F(OutboxFullDisk, OpensOnAFullDiskShipsWhatItHoldsAndDeclaresWhatItCouldNotStore) {
  const fs::path db = mount_point_ / "outbox.db";
  std::vector<std::uint64_t> seqs;
  {
    auto outbox = open_or_die(options_for(db));
    ASSERT_NE(outbox, nullptr);
    for (std::uint64_t key = 1; key <= 30; ++key) {
      DictionaryUpdate update;
      update.added = {{key, "a process"}};
      auto r = outbox->append(make_samples(20, fmt::format("k{}", key)), kT0, update);
      ASSERT_TRUE(r) << r.error().message();
      seqs.push_back(r->first_seq);
    }
  }  // closed: its -wal and -shm are gone, and making them again takes space
  const fs::path filler = mount_point_ / "filler";
  ASSERT_TRUE(tally::test::fill_filesystem(filler));

  auto opened = Outbox::open(options_for(db), kT0 + kSecond);
  ASSERT_TRUE(opened) << "an outbox on a full disk must open to ship what it holds: "
                      << opened.error().message();
  Outbox& outbox = **opened;
  // Everything it holds goes out, each batch once and in order, though the
  // disk cannot take a single ack.
  std::vector<std::uint64_t> shipped;
  for (;;) {
    auto next = outbox.next_ready("collector");
    ASSERT_TRUE(next) << next.error().message();
    if (!next->has_value()) break;
    shipped.push_back((*next)->seq);
    ASSERT_LE(shipped.size(), seqs.size()) << "batch " << (*next)->seq << " came back";
    auto acked = outbox.ack("collector", (*next)->seq);
    ASSERT_TRUE(acked) << acked.error().message();
  }
  EXPECT_EQ(shipped, seqs);
  // What it samples now cannot be stored: counted, and said.
  auto full = outbox.append(make_samples(7, "while-full"), kT0 + 2 * kSecond);
  ASSERT_FALSE(full);
  EXPECT_NE(full.error().message().find("disk is full"), std::string::npos)
      << full.error().message();
  auto stats = outbox.stats(kT0 + 2 * kSecond);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->samples_lost_append, 7u);
  EXPECT_EQ(stats->pending_batches, 0u);

  // Space returns: the loss is declared first, and the acks reach the file.
  fs::remove(filler);
  auto after = outbox.append(make_samples(5, "after"), kT0 + 3 * kSecond);
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_EQ(after->batches_formed, 2u);
  const auto rest = drain(outbox, "collector");
  ASSERT_EQ(rest.size(), 2u);
  ASSERT_TRUE(rest[0].gap.has_value());
  EXPECT_EQ(rest[0].gap->reason, GapReason::append_failed);
  EXPECT_EQ(rest[0].gap->samples, 7u);
  EXPECT_EQ(rest[1].sample_count, 5u);
  opened = Error("closed");
  EXPECT_EQ(integrity_check(db), "ok");
  EXPECT_EQ(query(db, "SELECT count(*) FROM batches"), "0");
}

}  // namespace
}  // namespace tally::queue
