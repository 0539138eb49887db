// End to end, real processes on loopback: tallyd (real BPF, 1 s interval)
// ships through a fault-injecting proxy to tally-collector. Whatever the
// network, the server and the agent do, every sample tallyd committed is
// stored exactly once, and every loss is declared.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <sstream>

#include <gtest/gtest.h>

#include "e2e_fixture.h"
#include "test_cgroup.h"

namespace tally::test {
namespace {

void phase(const char* what, std::chrono::seconds how_long) {
  std::printf("[%s for %llds]\n", what, static_cast<long long>(how_long.count()));
  std::fflush(stdout);
  std::this_thread::sleep_for(how_long);
}

// Holds a fault (or a healthy stretch) until the proxy has seen it at work
// `times` more times: requests faulted, or batches forwarded. A fixed
// length could pass with the agent backing off the whole time, and the
// fault never met; this fails the test instead, after 60 s.
void phase_until(const char* what, const std::function<std::uint64_t()>& count,
                 std::uint64_t times) {
  std::printf("[%s until %llu more]\n", what, static_cast<unsigned long long>(times));
  std::fflush(stdout);
  const std::uint64_t until = count() + times;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (count() < until && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(count(), until) << what << ": the proxy did not see it " << times << " more times";
}

TEST(EndToEnd, EverySampleArrivesExactlyOnceThroughNetworkServerAndAgentFaults) {
  TALLY_REQUIRE_BPF();
  // A throttled burner in a cgroup of its own all along, so that cgroup
  // lines (protocol version 3) go through every fault too.
  TestCgroup cgroup(0.3);
  Subprocess burner({BURNER_PATH, "spin", "600"});
  if (cgroup.skip_reason().empty()) cgroup.add(burner.pid());
  ShippingSystem sys;
  sys.start_agent();
  FaultProxy& proxy = sys.proxy();
  const auto faulted = [&proxy] { return proxy.faulted(); };
  const auto forwarded = [&proxy] { return proxy.forwarded(); };
  phase_until("healthy", forwarded, 4);

  sys.collector().stop(SIGTERM);
  // Long enough for the backlog to build and the backoff to reach its cap.
  phase_until("collector down", faulted, 5);
  sys.collector().start();

  proxy.set_mode(FaultProxy::Mode::error_500);
  phase_until("500 responses", faulted, 3);
  proxy.set_mode(FaultProxy::Mode::throttle_429);
  phase_until("429 with Retry-After", faulted, 3);
  proxy.set_slow_delay_ms(4500);  // longer than tallyd's 3 s timeout
  proxy.set_mode(FaultProxy::Mode::slow);
  phase_until("responses slower than the timeout", faulted, 2);
  proxy.set_mode(FaultProxy::Mode::reset_body);
  phase_until("connections reset mid-body", faulted, 3);
  proxy.set_mode(FaultProxy::Mode::pass);

  sys.kill_agent_between_intervals();
  sys.start_agent();
  phase_until("healthy after agent SIGKILL", forwarded, 3);
  sys.collector().stop(SIGKILL);
  sys.collector().start();
  phase_until("healthy after collector SIGKILL", forwarded, 3);
  sys.kill_agent_between_intervals();
  sys.start_agent();
  phase_until("healthy after second agent SIGKILL", forwarded, 3);

  auto flush = sys.tally({"flush", "--timeout", "60"});
  EXPECT_EQ(flush.exit_code, 0) << flush.out << flush.err;
  EXPECT_NE(flush.out.find("outbox empty"), std::string::npos) << flush.out;
  ASSERT_EQ(sys.stop_agent(), 0);  // final sample, shipped within the shutdown timeout
  burner.signal(SIGKILL);

  EXPECT_GT(sys.proxy().faulted(), 10u);
  const queue::OutboxStats outbox = sys.outbox_stats();
  EXPECT_EQ(outbox.pending_batches, 0u);
  EXPECT_EQ(outbox.staged_samples, 0u);

  const auto agent = sys.agent_record();
  std::printf("collector: %s\n", agent.dump().c_str());
  EXPECT_EQ(agent["agent_id"], outbox.agent_id);
  EXPECT_TRUE(agent["missing"].empty()) << agent.dump();
  EXPECT_TRUE(agent["declared_lost"].empty()) << agent.dump();
  EXPECT_EQ(agent["last_seq"].get<std::uint64_t>(), outbox.last_seq);
  EXPECT_GT(agent["duplicates_rejected"].get<std::uint64_t>(), 0u)
      << "the slow phase re-sends batches the collector already stored";

  // Exactly the committed samples, each once.
  const auto& committed = sys.committed();
  const auto stored = sys.stored_samples(committed.size());
  std::printf("committed %zu samples, collector stored %zu\n", committed.size(), stored.size());
  EXPECT_EQ(agent["samples_stored"].get<std::uint64_t>(), committed.size());
  if (cgroup.skip_reason().empty()) {
    const auto is_cgroup_line = [](const std::string& line) {
      return line.find(R"("kind":"cgroup")") != std::string::npos;
    };
    EXPECT_GT(std::count_if(committed.begin(), committed.end(), is_cgroup_line), 10)
        << "the burner's cgroup has a line per interval";
  }
  const auto not_stored = minus(committed, stored);
  const auto extra = minus(stored, committed);
  EXPECT_TRUE(not_stored.empty()) << not_stored.size() << " committed samples missing, e.g. "
                                  << (not_stored.empty() ? "" : not_stored[0]);
  EXPECT_TRUE(extra.empty()) << extra.size() << " samples stored that were not committed (or "
                             << "twice), e.g. " << (extra.empty() ? "" : extra[0]);
}

TEST(EndToEnd, APermanentlyRejectedBatchIsDeadLetteredAndTheNextOnesStillArrive) {
  TALLY_REQUIRE_BPF();
  ShippingSystem sys;
  sys.start_agent();
  phase("healthy", 3s);
  sys.proxy().reject_next(1);
  phase("one 400", 4s);
  auto flush = sys.tally({"flush", "--timeout", "30"});
  EXPECT_EQ(flush.exit_code, 0) << flush.out << flush.err;
  auto status = sys.tally({"status", "--json"});
  EXPECT_EQ(status.exit_code, 1) << "dead letters make the agent degraded";
  auto s = nlohmann::json::parse(status.out);
  EXPECT_EQ(s["outbox"]["dead_letters"], 1);
  EXPECT_EQ(s["sinks"][0]["batches_rejected"], 1);
  ASSERT_EQ(sys.stop_agent(), 0);

  const auto agent = sys.agent_record();
  EXPECT_TRUE(agent["missing"].empty()) << agent.dump();
  ASSERT_EQ(agent["declared_lost"].size(), 1u) << agent.dump();
  EXPECT_EQ(agent["declared_lost"][0]["reason"], "rejected");
  const auto lost_seq = agent["declared_lost"][0]["first_seq"].get<std::uint64_t>();
  EXPECT_LT(lost_seq, agent["last_seq"].get<std::uint64_t>()) << "later batches arrived";
  const auto lost = agent["declared_lost"][0]["samples"].get<std::uint64_t>();
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(agent["samples_stored"].get<std::uint64_t>() + lost, sys.committed().size());

  // The outbox stores compact records; a dead letter holds the JSON lines
  // that were refused, for people to read.
  const auto dead = sys.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  std::size_t lines = 0;
  std::istringstream in(dead[0]);
  for (std::string line; std::getline(in, line); ++lines) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_TRUE(j["kind"] == "process" || j["kind"] == "host") << line;
  }
  EXPECT_EQ(lines, lost);
}

// The collector loses its database (a new volume, say) while the agent
// believes it holds the names of every process: the agent's samples, which
// leave the names out, get a 409, and the agent sends them again in full.
// Everything stored afterwards is exactly what was committed, names and all.
TEST(EndToEnd, ACollectorThatLostItsDatabaseIsSentTheProcessNamesAgain) {
  TALLY_REQUIRE_BPF();
  ShippingSystem sys;
  sys.start_agent();
  phase("healthy: the collector acknowledges every process's names", 4s);
  sys.collector().stop(SIGTERM);
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(sys.collector_db() + suffix);
  sys.collector().start();
  phase("a new, empty collector database", 4s);
  auto flush = sys.tally({"flush", "--timeout", "60"});
  EXPECT_EQ(flush.exit_code, 0) << flush.out << flush.err;
  auto status = sys.tally({"status", "--json"});
  EXPECT_GE(nlohmann::json::parse(status.out)["sinks"][0]["names_resent"], 1) << status.out;
  const std::string log = sys.agent().process().stderr_text();
  ASSERT_EQ(sys.stop_agent(), 0);

  EXPECT_NE(log.find("does not hold process names it acknowledged"), std::string::npos) << log;
  EXPECT_EQ(sys.outbox_stats().pending_batches, 0u);
  EXPECT_EQ(sys.outbox_stats().dead_letters, 0u) << "a 409 for names is not a rejection";
  const auto stored = sys.stored_samples(1);
  const auto not_committed = minus(stored, sys.committed());
  EXPECT_TRUE(not_committed.empty())
      << not_committed.size() << " stored samples differ from every committed one, e.g. "
      << (not_committed.empty() ? "" : not_committed[0]);
  std::size_t with_names = 0;
  for (const auto& s : stored) {
    with_names += nlohmann::json::parse(s).contains("comm") ? 1 : 0;
  }
  EXPECT_GT(with_names, 0u);
}

// Batches failed with retries minutes away; `tally flush` ships them now,
// and shutting down formed and shipped the last staged samples.
TEST(EndToEnd, AFlushShipsAtOnceWhatWaitsOnALongBackoff) {
  TALLY_REQUIRE_BPF();
  ShippingSystem sys({"--backoff-base-ms", "600000", "--backoff-cap", "3600"});
  sys.proxy().set_mode(FaultProxy::Mode::error_500);
  sys.start_agent();
  phase("500 responses, each batch's retry up to 10 min away", 4s);
  sys.proxy().set_mode(FaultProxy::Mode::pass);
  auto flush = sys.tally({"flush", "--timeout", "60"});
  EXPECT_EQ(flush.exit_code, 0) << flush.out << flush.err;
  EXPECT_NE(flush.out.find("outbox empty"), std::string::npos) << flush.out;
  ASSERT_EQ(sys.stop_agent(), 0);

  EXPECT_GT(sys.proxy().faulted(), 0u);
  EXPECT_EQ(sys.outbox_stats().pending_batches, 0u);
  const auto agent = sys.agent_record();
  EXPECT_TRUE(agent["missing"].empty()) << agent.dump();
  EXPECT_EQ(agent["samples_stored"].get<std::uint64_t>(), sys.committed().size());
}

TEST(EndToEnd, A413SplitsBatchesIntoPiecesThatEachArriveOnce) {
  TALLY_REQUIRE_BPF();
  ShippingSystem sys;
  sys.proxy().set_size_limit(1500);  // compressed bytes: a few samples per piece
  sys.proxy().set_mode(FaultProxy::Mode::limit_413);
  sys.start_agent();
  // 150 exits in one interval make a batch well over the limit, however
  // quiet the machine is otherwise.
  const RunResult kids = run({BURNER_PATH, "children", "150", "2"}, 60s);
  ASSERT_EQ(kids.exit_code, 0) << kids.err;
  phase("bodies over 1500 bytes refused", 4s);
  sys.proxy().set_mode(FaultProxy::Mode::pass);
  auto flush = sys.tally({"flush", "--timeout", "30"});
  EXPECT_EQ(flush.exit_code, 0) << flush.out << flush.err;
  ASSERT_EQ(sys.stop_agent(), 0);

  EXPECT_GT(sys.proxy().faulted(), 0u);
  const auto agent = sys.agent_record();
  EXPECT_TRUE(agent["missing"].empty()) << agent.dump();
  // A single sample still over the limit (a very long command line) is
  // dead-lettered and declared lost; everything else arrives exactly once.
  std::uint64_t declared = 0;
  for (const auto& d : agent["declared_lost"]) {
    EXPECT_EQ(d["reason"], "rejected");
    declared += d["samples"].get<std::uint64_t>();
  }
  const auto stored = sys.stored_samples(sys.committed().size() - declared);
  EXPECT_EQ(minus(sys.committed(), stored).size(), declared);
  EXPECT_TRUE(minus(stored, sys.committed()).empty());
  std::printf("%zu samples committed, %zu stored, %llu declared lost as too large alone\n",
              sys.committed().size(), stored.size(), static_cast<unsigned long long>(declared));
}

}  // namespace
}  // namespace tally::test
