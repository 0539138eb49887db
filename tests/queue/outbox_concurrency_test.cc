// One thread appends while shipper threads drain: nothing lost or doubled.
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tally/time_util.h"
#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;

TEST(OutboxConcurrency, AppendingWhileShippersDrainLosesAndDoublesNothing) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db", {"collector", "vm"});
  options.batch.max_samples = 3;  // some appends form several batches
  auto outbox = open_or_die(options);
  ASSERT_NE(outbox, nullptr);

  std::atomic<bool> appending{true};
  std::vector<std::uint64_t> formed;
  std::thread appender([&] {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
      auto r = outbox->append(make_samples(1 + i % 7, fmt::format("a{}", i), 100), realtime_ns());
      if (!r) {
        ADD_FAILURE() << r.error().message();
        break;
      }
      for (auto s = r->first_seq; s != 0 && s <= r->last_seq; ++s) formed.push_back(s);
    }
    appending = false;
  });

  auto ship = [&](const char* sink, std::vector<std::uint64_t>& acked) {
    for (;;) {
      const bool last_round = !appending.load();
      auto next = outbox->next_ready(sink);
      if (!next) {
        ADD_FAILURE() << next.error().message();
        return;
      }
      if (!next->has_value()) {
        if (last_round) return;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
      if (!outbox->ack(sink, (*next)->seq)) {
        ADD_FAILURE() << "ack failed";
        return;
      }
      acked.push_back((*next)->seq);
    }
  };
  std::vector<std::uint64_t> collector, vm;
  std::thread shipper1(ship, "collector", std::ref(collector));
  std::thread shipper2(ship, "vm", std::ref(vm));
  appender.join();
  shipper1.join();
  shipper2.join();

  ASSERT_GT(formed.size(), 50u);
  for (const auto* acked : {&collector, &vm}) {
    ASSERT_EQ(acked->size(), formed.size());
    for (std::size_t i = 1; i < acked->size(); ++i) ASSERT_LT((*acked)[i - 1], (*acked)[i]);
    EXPECT_EQ(std::set<std::uint64_t>(acked->begin(), acked->end()),
              std::set<std::uint64_t>(formed.begin(), formed.end()));
  }
  auto stats = outbox->stats(realtime_ns());
  EXPECT_EQ(stats->pending_batches, 0u);
  EXPECT_EQ(stats->last_seq, formed.back());
  EXPECT_EQ(read_batches(dir / "outbox.db").size(), 0u);
}

}  // namespace
}  // namespace tally::queue
