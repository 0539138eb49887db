// An outbox on a real small filesystem (a 2, 4 and 8 MiB tmpfs): its WAL
// and its database must fit, whether the sink takes everything or nothing.
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;
namespace fs = std::filesystem;

class OutboxSmallFilesystem : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    mount_point_ = scratch_.path() / "tmpfs";
    fs::create_directories(mount_point_);
    const std::string size = fmt::format("size={}m", GetParam());
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, size.c_str()) != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs at " << mount_point_ << " (" << std::strerror(errno)
                   << "); this test needs root";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_point_.c_str(), MNT_DETACH);
  }

  OutboxOptions options() const {
    auto o = options_for(mount_point_ / "outbox.db");
    o.compress = false;  // as tallyd stores its compact records
    return o;
  }

  // One interval as tallyd stores it: 300 records of ~16 bytes, names for
  // 10 processes that started and for the 10 that exited.
  struct Interval {
    std::vector<std::string> samples;
    DictionaryUpdate names;
  };
  Interval next_interval(int i) {
    Interval out;
    out.samples = make_samples(300, fmt::format("{}", i), 16);
    out.names.retired = started_;
    started_.clear();
    for (int p = 0; p < 10; ++p) {
      out.names.added.emplace_back(next_key_, std::string(150, 'n'));
      started_.push_back(next_key_++);
    }
    return out;
  }

  std::uint64_t used_on_filesystem() const {
    struct statvfs vfs {};
    EXPECT_EQ(::statvfs(mount_point_.c_str(), &vfs), 0);
    return static_cast<std::uint64_t>(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
  }
  std::uint64_t filesystem_size() const { return static_cast<std::uint64_t>(GetParam()) << 20; }

  ScratchDir scratch_;
  fs::path mount_point_;
  bool mounted_ = false;
  std::uint64_t next_key_ = 1;
  std::vector<std::uint64_t> started_;
};

// A healthy collector: every batch is acked as soon as it is formed. With
// SQLite's 4 MiB checkpoint threshold the WAL alone filled a 2 or 4 MiB
// disk, and then every append and every ack failed.
TEST_P(OutboxSmallFilesystem, ShippingEverythingNeverFillsTheDisk) {
  auto outbox = open_or_die(options());
  ASSERT_NE(outbox, nullptr);
  const int intervals = 2000;  // ~10 MiB of records and names, written and deleted
  for (int i = 0; i < intervals; ++i) {
    const Interval interval = next_interval(i);
    auto r = outbox->append(interval.samples, kT0 + static_cast<std::uint64_t>(i) * kSecond,
                            interval.names);
    ASSERT_TRUE(r) << "interval " << i << ": " << r.error().message();
    for (std::uint64_t seq = r->first_seq; seq != 0 && seq <= r->last_seq; ++seq) {
      auto acked = outbox->ack("collector", seq);
      ASSERT_TRUE(acked) << "interval " << i << ": " << acked.error().message();
    }
    ASSERT_LT(used_on_filesystem(), filesystem_size()) << "interval " << i;
  }
  auto stats = outbox->stats(kT0);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->pending_batches, 0u);
  EXPECT_EQ(stats->samples_lost_append, 0u);
  EXPECT_EQ(stats->last_seq, static_cast<std::uint64_t>(intervals));
}

// A collector that is down: the outbox keeps the newest batches that fit on
// the filesystem and declares the older ones; no append fails for lack of
// space, and every sample is either held or declared.
TEST_P(OutboxSmallFilesystem, NothingShippedKeepsWhatFitsAndDeclaresTheRest) {
  auto outbox = open_or_die(options());
  ASSERT_NE(outbox, nullptr);
  const int intervals = 1500;  // ~7 MiB of records and names
  std::uint64_t appended = 0;
  for (int i = 0; i < intervals; ++i) {
    const Interval interval = next_interval(i);
    auto r = outbox->append(interval.samples, kT0 + static_cast<std::uint64_t>(i) * kSecond,
                            interval.names);
    ASSERT_TRUE(r) << "interval " << i << ": " << r.error().message();
    appended += interval.samples.size();
  }
  EXPECT_LT(used_on_filesystem(), filesystem_size());
  std::uint64_t held = 0, declared = 0;
  for (const Batch& batch : drain(*outbox, "collector")) {
    if (batch.gap) {
      EXPECT_EQ(batch.gap->reason, GapReason::cap);
      declared += batch.gap->samples;
    } else {
      held += batch.sample_count;
    }
  }
  EXPECT_GT(held, 0u);
  EXPECT_EQ(held + declared, appended);
}

INSTANTIATE_TEST_SUITE_P(MiB, OutboxSmallFilesystem, ::testing::Values(2, 4, 8));

}  // namespace
}  // namespace tally::queue
