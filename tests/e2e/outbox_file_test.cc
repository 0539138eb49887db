// A real tallyd shipping to a real tally-collector while its outbox is
// mistreated: a second tallyd on the same outbox, a small or full
// filesystem, the file deleted, replaced or truncated under it or while it
// is stopped. Whatever happens, the collector either gets every seq or is
// told which are lost (GET /v1/agents: nothing "missing", nothing silently
// short of the last seq formed).
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "collector_run.h"
#include "files.h"
#include "tally_cli.h"
#include "tallyd_run.h"
#include "temp_dir.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Polls `done` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& done, std::chrono::seconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return done();
}

void remove_database(const fs::path& db) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
}

// An agent whose outbox lives in its own directory (a tmpfs, for some
// tests), and a collector that can be taken down and brought back.
class AgentAndCollector {
 public:
  AgentAndCollector() : collector_(dir_ / "collector.db") { fs::create_directories(state_); }

  const fs::path& state() const { return state_; }
  fs::path outbox() const { return state_ / "outbox.db"; }
  std::string socket() const { return dir_ / "tally.sock"; }
  CollectorRun& collector() { return collector_; }
  TallydRun& agent() { return *agent_; }

  std::vector<std::string> agent_args() const {
    return {"--interval",         "1",      "--outbox",          outbox().string(),
            "--socket",           socket(), "--endpoint",        collector_.url("/v1/batches"),
            "--timeout",          "2",      "--connect-timeout", "1",
            "--backoff-base-ms",  "100",    "--backoff-cap",     "1",
            "--shutdown-timeout", "2"};
  }

  void start_agent() {
    agent_ = std::make_unique<TallydRun>(agent_args());
    ASSERT_TRUE(agent_->wait_ready("control socket")) << agent_->process().stderr_text();
  }
  int stop_agent() {
    const int code = agent_->stop();
    last_agent_log_ = agent_->process().stderr_text();
    agent_.reset();
    return code;
  }
  const std::string& last_agent_log() const { return last_agent_log_; }

  nlohmann::json status() {
    auto r = run_tally(socket(), {"status", "--json"}, 30s);
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_discarded() ? nlohmann::json::object() : j;
  }
  std::uint64_t outbox_number(const char* field) {
    const auto s = status();
    if (!s.contains("outbox") || !s["outbox"].contains(field)) return 0;
    return s["outbox"][field].get<std::uint64_t>();
  }
  std::uint64_t pending() { return outbox_number("pending_batches"); }
  std::uint64_t last_seq() { return outbox_number("last_seq"); }
  std::string agent_id() { return status()["outbox"].value("agent_id", ""); }

  // The collector's record of an agent, or null.
  nlohmann::json agent_record(const std::string& agent_id) {
    const nlohmann::json all = collector_.get("/v1/agents");
    for (const auto& a : all["agents"]) {
      if (a["agent_id"] == agent_id) return a;
    }
    return nullptr;
  }
  std::uint64_t received_up_to(const std::string& agent_id) {
    const auto a = agent_record(agent_id);
    return a.is_null() ? 0 : a["last_seq"].get<std::uint64_t>();
  }

  // Stops shipping and waits until at least n batches wait in the outbox.
  void hold_batches(std::uint64_t n) {
    collector_.stop();
    ASSERT_TRUE(eventually([&] { return pending() >= n; })) << status().dump();
  }

 private:
  TempDir dir_;
  fs::path state_ = dir_.path() / "state";
  CollectorRun collector_;
  std::unique_ptr<TallydRun> agent_;
  std::string last_agent_log_;
};

class OutboxFile : public ::testing::Test {
 protected:
  void SetUp() override { TALLY_REQUIRE_BPF(); }
};

TEST_F(OutboxFile, ASecondTallydOnTheSameOutboxExitsSayingWhoHoldsItAndChangesNothing) {
  AgentAndCollector sys;
  ASSERT_NO_FATAL_FAILURE(sys.start_agent());
  const std::string agent = sys.agent_id();
  ASSERT_TRUE(eventually([&] { return sys.received_up_to(agent) >= 3; }));
  // Frozen, so that only the second tallyd could change a byte.
  sys.agent().process().signal(SIGSTOP);
  const auto before = snapshot_files(sys.state());

  auto args = sys.agent_args();
  args[5] = sys.state() / "second.sock";  // its own socket: only the outbox is shared
  args.insert(args.begin(), TALLYD_PATH);
  const RunResult second = run(args, 30s);
  EXPECT_NE(second.exit_code, 0) << second.err;
  EXPECT_NE(second.exit_code, -1) << "the second tallyd kept running";
  EXPECT_NE(second.err.find(sys.outbox().string()), std::string::npos) << second.err;
  EXPECT_NE(second.err.find(fmt::format("pid {}", sys.agent().process().pid())), std::string::npos)
      << second.err;
  EXPECT_EQ(snapshot_files(sys.state()), before) << "the second tallyd changed the outbox";

  // The first goes on as if nothing happened: every seq arrives, once.
  sys.agent().process().signal(SIGCONT);
  const std::uint64_t formed = sys.last_seq();
  ASSERT_TRUE(eventually([&] { return sys.received_up_to(agent) >= formed + 3; }));
  EXPECT_EQ(sys.stop_agent(), 0);
  const auto record = sys.agent_record(agent);
  EXPECT_EQ(record["missing"], nlohmann::json::array());
  EXPECT_EQ(record["declared_lost"], nlohmann::json::array());
  EXPECT_EQ(record["duplicates_rejected"], 0);
  EXPECT_EQ(sys.collector().get("/v1/agents")["agents"].size(), 1u);
  EXPECT_EQ(sys.last_agent_log().find("dead-lettered"), std::string::npos) << sys.last_agent_log();
}

// While the collector is away, does `mistreat` to the outbox of a running
// tallyd, lets it sample two more intervals and stops it with its batches
// still unshipped: what it held must have been in the file. Then starts it
// again with the collector back and waits until every seq it formed has
// arrived under the same agent id. Returns the collector's record.
nlohmann::json restart_and_expect_every_seq(AgentAndCollector& sys,
                                            const std::function<void()>& mistreat) {
  EXPECT_NO_FATAL_FAILURE(sys.start_agent());
  const std::string agent = sys.agent_id();
  EXPECT_TRUE(eventually([&] { return sys.received_up_to(agent) >= 2; }));
  EXPECT_NO_FATAL_FAILURE(sys.hold_batches(2));
  mistreat();
  const std::uint64_t at_mistreatment = sys.last_seq();
  EXPECT_TRUE(eventually([&] { return sys.last_seq() >= at_mistreatment + 2; }));
  const std::uint64_t formed = sys.last_seq();
  EXPECT_EQ(sys.stop_agent(), 0);

  sys.collector().start();
  EXPECT_NO_FATAL_FAILURE(sys.start_agent());
  EXPECT_EQ(sys.agent_id(), agent);
  EXPECT_TRUE(eventually([&] { return sys.received_up_to(agent) > formed; }))
      << "seqs up to " << formed << " never arrived: " << sys.agent_record(agent).dump();
  return sys.agent_record(agent);
}

TEST_F(OutboxFile, DeletedUnderARunningTallydNothingIsLost) {
  AgentAndCollector sys;
  const auto record =
      restart_and_expect_every_seq(sys, [&] { remove_database(sys.outbox()); });  // rm outbox.db*
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(record["missing"], nlohmann::json::array());
  EXPECT_EQ(record["declared_lost"], nlohmann::json::array()) << "nothing was lost";
}

TEST_F(OutboxFile, ReplacedUnderARunningTallydNothingIsLostAndTheOtherFileIsKept) {
  AgentAndCollector sys;
  const auto record = restart_and_expect_every_seq(sys, [&] {
    const fs::path other = sys.state() / "other";
    { std::ofstream(other, std::ios::binary) << "a file of someone else's"; }
    fs::rename(other, sys.outbox());  // mv other outbox.db
  });
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(record["missing"], nlohmann::json::array());
  EXPECT_EQ(record["declared_lost"], nlohmann::json::array());
  std::size_t kept = 0;
  for (const auto& entry : fs::directory_iterator(sys.state())) {
    if (entry.path().filename().string().starts_with("outbox.db.foreign-")) {
      std::ifstream in(entry.path(), std::ios::binary);
      EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "a file of someone else's");
      ++kept;
    }
  }
  EXPECT_EQ(kept, 1u);
}

TEST_F(OutboxFile, TruncatedUnderARunningTallydTheLossIsDeclaredUnderTheSameAgent) {
  AgentAndCollector sys;
  ASSERT_NO_FATAL_FAILURE(sys.start_agent());
  const std::string agent = sys.agent_id();
  ASSERT_TRUE(eventually([&] { return sys.received_up_to(agent) >= 2; }));
  ASSERT_NO_FATAL_FAILURE(sys.hold_batches(3));
  ASSERT_EQ(::truncate(sys.outbox().c_str(), 0), 0);  // truncate -s 0 outbox.db
  const std::uint64_t at_truncation = sys.last_seq();
  ASSERT_TRUE(eventually([&] { return sys.last_seq() >= at_truncation + 3; }));

  sys.collector().start();
  const std::uint64_t formed = sys.last_seq();
  ASSERT_TRUE(eventually([&] { return sys.received_up_to(agent) >= formed; }))
      << "seqs up to " << formed << " never arrived: " << sys.agent_record(agent).dump();
  EXPECT_EQ(sys.agent_id(), agent);
  const auto record = sys.agent_record(agent);
  EXPECT_EQ(record["missing"], nlohmann::json::array()) << record.dump();
  ASSERT_EQ(record["declared_lost"].size(), 1u) << record.dump();
  const auto& lost = record["declared_lost"][0];
  EXPECT_EQ(lost["reason"], "outbox_lost");
  EXPECT_GE(lost["first_seq"].get<std::uint64_t>(), 1u);
  EXPECT_GE(lost["last_seq"].get<std::uint64_t>(), lost["first_seq"].get<std::uint64_t>() + 2);
  EXPECT_GT(lost["samples"].get<std::uint64_t>(), 0u);

  // And it says so, in words.
  const auto s = sys.status();
  EXPECT_EQ(s["health"]["status"], "degraded");
  EXPECT_NE(s["health"]["reasons"].dump().find("truncated"), std::string::npos) << s.dump();
  const RunResult human = run_tally(sys.socket(), {"status"}, 30s);
  EXPECT_NE(human.out.find("truncated"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("declared"), std::string::npos) << human.out;
  EXPECT_EQ(sys.stop_agent(), 0);
  EXPECT_EQ(sys.last_agent_log().find("no dictionary entry"), std::string::npos)
      << sys.last_agent_log();
}

TEST_F(OutboxFile, DeletedWhileTallydWasStoppedTheNewAgentNamesItsPredecessor) {
  AgentAndCollector sys;
  ASSERT_NO_FATAL_FAILURE(sys.start_agent());
  const std::string old_agent = sys.agent_id();
  ASSERT_TRUE(eventually([&] { return sys.received_up_to(old_agent) >= 2; }));
  ASSERT_NO_FATAL_FAILURE(sys.hold_batches(2));
  ASSERT_EQ(sys.stop_agent(), 0);
  remove_database(sys.outbox());  // rm outbox.db*

  sys.collector().start();
  ASSERT_NO_FATAL_FAILURE(sys.start_agent());
  const std::string new_agent = sys.agent_id();
  ASSERT_NE(new_agent, old_agent);
  ASSERT_TRUE(eventually([&] { return sys.received_up_to(new_agent) >= 2; }));
  const auto record = sys.agent_record(new_agent);
  ASSERT_FALSE(record["declared_lost"].empty()) << record.dump();
  const auto& lost = record["declared_lost"][0];
  EXPECT_EQ(lost["seq"], 1);  // the new agent's first batch
  EXPECT_EQ(lost["reason"], "outbox_lost");
  EXPECT_GT(lost["samples"].get<std::uint64_t>(), 0u);
  EXPECT_NE(lost["detail"].get<std::string>().find(old_agent), std::string::npos) << lost.dump();
  const auto s = sys.status();
  EXPECT_EQ(s["outbox"]["predecessor"]["agent_id"], old_agent);
  EXPECT_GT(s["outbox"]["predecessor"]["last_seq"].get<std::uint64_t>(), 0u);
}

// The outbox on a small tmpfs: it runs, stops with batches unshipped, the
// disk fills up, and tallyd starts again on the full disk.
class OutboxOnASmallFilesystem : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    TALLY_REQUIRE_BPF();
    const std::string size = fmt::format("size={}m", GetParam());
    if (::mount("tmpfs", sys_.state().c_str(), "tmpfs", 0, size.c_str()) != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno) << ")";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(sys_.state().c_str(), MNT_DETACH);
  }

  AgentAndCollector sys_;
  bool mounted_ = false;
};

TEST_P(OutboxOnASmallFilesystem, ARestartOnAFullDiskShipsWhatItHoldsAndDeclaresWhatItLost) {
  ASSERT_NO_FATAL_FAILURE(sys_.start_agent());
  const std::string agent = sys_.agent_id();
  ASSERT_TRUE(eventually([&] { return sys_.received_up_to(agent) >= 2; }));
  ASSERT_NO_FATAL_FAILURE(sys_.hold_batches(2));
  ASSERT_EQ(sys_.stop_agent(), 0);
  const fs::path filler = sys_.state() / "filler";
  ASSERT_TRUE(fill_filesystem(filler));

  sys_.collector().start();
  ASSERT_NO_FATAL_FAILURE(sys_.start_agent());  // used to exit: "disk is full"
  const std::uint64_t held = sys_.last_seq();
  ASSERT_TRUE(eventually([&] { return sys_.received_up_to(agent) >= held; }))
      << "what the outbox held never arrived: " << sys_.agent_record(agent).dump();
  // Nothing new fits (the few KiB opening may have handed back are taken
  // too): said in words, and counted.
  ASSERT_TRUE(fill_filesystem(sys_.state() / "filler-2"));
  ASSERT_TRUE(eventually([&] {
    const auto s = sys_.status();
    return s["outbox"].value("disk_full", false) && s["sampling"].value("append_failures", 0) > 0 &&
           s["health"]["reasons"].dump().find("disk full") != std::string::npos;
  })) << sys_.status().dump();
  const RunResult human = run_tally(sys_.socket(), {"status"}, 30s);
  EXPECT_NE(human.out.find("DISK FULL"), std::string::npos) << human.out;

  // Space returns: appends go on and the samples lost meanwhile are declared.
  fs::remove(filler);
  fs::remove(sys_.state() / "filler-2");
  ASSERT_TRUE(eventually([&] {
    const auto a = sys_.agent_record(agent);
    return !a.is_null() && a["declared_lost"].dump().find("append_failed") != std::string::npos;
  })) << sys_.agent_record(agent).dump();
  const std::uint64_t formed = sys_.last_seq();
  ASSERT_TRUE(eventually([&] { return sys_.received_up_to(agent) >= formed; }));
  EXPECT_EQ(sys_.agent_record(agent)["missing"], nlohmann::json::array());
  EXPECT_FALSE(sys_.status()["outbox"].value("disk_full", true));
  EXPECT_EQ(sys_.stop_agent(), 0);
}

INSTANTIATE_TEST_SUITE_P(MiB, OutboxOnASmallFilesystem, ::testing::Values(2, 4, 8));

}  // namespace
}  // namespace tally::test
