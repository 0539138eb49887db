// SIGKILL at random moments never loses a committed append, never leaves a
// partial batch and never breaks the seq sequence.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "crash_protocol.h"
#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;

struct LoggedAppend {
  std::uint64_t first_seq, last_seq, run, append, count;
};

struct ChildLog {
  std::vector<LoggedAppend> appends;
  std::vector<std::uint64_t> acks;
};

// Starts the child, lets it run for `run_for`, SIGKILLs it and returns what
// it logged. With `after_first_output`, run_for counts from the child's
// first logged line: under a sanitizer on a loaded machine start-up alone
// can take longer than run_for, and every kill would land in it.
ChildLog run_and_kill(const std::filesystem::path& db, std::uint64_t run,
                      std::chrono::microseconds run_for, bool after_first_output) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    const std::string run_arg = std::to_string(run);
    const std::string seed_arg = std::to_string(run * 7919 + 1);
    ::execl(OUTBOX_CRASH_CHILD, OUTBOX_CRASH_CHILD, db.c_str(), run_arg.c_str(), seed_arg.c_str(),
            static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  auto deadline =
      std::chrono::steady_clock::now() +
      (after_first_output ? std::chrono::microseconds(std::chrono::seconds(30)) : run_for);
  bool started = !after_first_output;
  // Read while it runs so a full pipe never stalls the child.
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;  // child exited by itself: the checks below will say why
      out.append(buf, static_cast<std::size_t>(n));
      if (!started) {
        started = true;
        deadline = std::chrono::steady_clock::now() + run_for;
      }
    }
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "child exited by itself with status " << status;
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);

  ChildLog log;
  std::istringstream lines(out);
  std::string tag;
  while (lines >> tag) {
    if (tag == "A") {
      LoggedAppend a{};
      lines >> a.first_seq >> a.last_seq >> a.run >> a.append >> a.count;
      log.appends.push_back(a);
    } else if (tag == "K") {
      std::uint64_t seq = 0;
      lines >> seq;
      log.acks.push_back(seq);
    }
  }
  return log;
}

TEST(OutboxCrash, SigkillNeverLosesACommittedAppendNorLeavesAPartialBatch) {
  ScratchDir dir;
  const auto db = dir / "outbox.db";
  std::mt19937 rng(20240101);
  std::uint64_t last_seq_seen = 0;
  std::uint64_t total_appends = 0;
  constexpr int kKills = 60;

  for (int kill = 0; kill < kKills; ++kill) {
    SCOPED_TRACE("kill " + std::to_string(kill));
    const auto run_for = std::chrono::microseconds(5000 + rng() % 60000);
    // Every other kill lands anywhere, start-up included; the rest after the
    // child has begun appending, however slow its start.
    const ChildLog log =
        run_and_kill(db, static_cast<std::uint64_t>(kill + 1), run_for, kill % 2 == 1);
    total_appends += log.appends.size();

    ASSERT_EQ(integrity_check(db), "ok");
    std::uint64_t last_acked = 0;
    std::uint64_t last_seq = 0;
    {
      auto outbox = open_or_die(options_for(db));
      ASSERT_NE(outbox, nullptr);
      auto stats = outbox->stats(kT0);
      ASSERT_TRUE(stats);
      ASSERT_EQ(stats->quarantine_events, 0u);
      last_acked = stats->sinks[0].last_acked_seq;
      last_seq = stats->last_seq;
    }
    const auto batches = read_batches(db);
    std::map<std::uint64_t, const RawBatch*> by_seq;
    for (const RawBatch& b : batches) by_seq[b.seq] = &b;

    // The seq never goes back, and what is left is exactly (acked, last].
    ASSERT_GE(last_seq, last_seq_seen);
    last_seq_seen = last_seq;
    ASSERT_EQ(batches.size(), last_seq - last_acked);
    for (std::size_t i = 0; i < batches.size(); ++i) {
      ASSERT_EQ(batches[i].seq, last_acked + 1 + i);
      ASSERT_EQ(batches[i].kind, 0);
      // No partial batch: every line complete and counted.
      const auto lines = lines_of(batches[i].payload);
      ASSERT_EQ(lines.size(), batches[i].sample_count);
      ASSERT_LE(batches[i].sample_count, kCrashMaxSamplesPerBatch);
      // Built with append, not operator+: GCC 12 at -O2 warns falsely
      // (-Warray-bounds) on an inlined std::string operator+ here.
      std::string intact_tail(64, 'x');
      intact_tail.append("\"}");
      for (const std::string& line : lines) {
        ASSERT_NE(line.find(intact_tail), std::string::npos) << line;
      }
    }
    for (const std::uint64_t acked : log.acks) ASSERT_LE(acked, last_acked);

    // Every append that returned success is present, intact and in order, or acked.
    for (const LoggedAppend& a : log.appends) {
      ASSERT_LE(a.last_seq, last_seq);
      std::vector<std::string> stored;
      bool acked = false;
      for (auto seq = a.first_seq; seq <= a.last_seq; ++seq) {
        if (seq <= last_acked) {
          acked = true;
          continue;
        }
        ASSERT_EQ(by_seq.count(seq), 1u) << "seq " << seq << " of a committed append is missing";
        for (auto& line : lines_of(by_seq[seq]->payload)) stored.push_back(std::move(line));
      }
      if (acked) continue;
      ASSERT_EQ(stored.size(), a.count);
      for (std::uint64_t i = 0; i < a.count; ++i) {
        ASSERT_EQ(stored[i], crash_sample(a.run, a.append, i));
      }
    }
  }
  RecordProperty("appends", std::to_string(total_appends));
  RecordProperty("last_seq", std::to_string(last_seq_seen));
  // The kills must have landed mid-work, not only during start-up.
  EXPECT_GT(total_appends, static_cast<std::uint64_t>(kKills));
  EXPECT_GT(last_seq_seen, static_cast<std::uint64_t>(kKills));
}

}  // namespace
}  // namespace tally::queue
