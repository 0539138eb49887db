// The shipper against a real HTTP server on loopback that is down, then up:
// it backs off as a sink, whatever the backlog, and then delivers the
// backlog in seq order.
#include "shipping/shipper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "loopback_server.h"
#include "samples/compact_records.h"
#include "samples/json_line.h"
#include "shipping/native_format.h"
#include "tally/time_util.h"
#include "temp_dir.h"

namespace tally::shipping {
namespace {

using namespace std::chrono_literals;

// Answers 503 while down, 200 once up; records the Idempotency-Key of each
// request it acknowledged.
class FlakyServer {
 public:
  FlakyServer()
      : server_("flaky server", [this](int fd) {
          std::string buffer, head, body;
          while (test::read_http_request(fd, buffer, head, body)) {
            const bool up = up_;
            {
              std::lock_guard lock(mu_);
              const auto at = head.find("Idempotency-Key: ");
              const std::string key = at == std::string::npos
                                          ? std::string("?")
                                          : head.substr(at + 17, head.find("\r\n", at) - at - 17);
              (up ? acked_ : refused_).push_back(key);
              request_at_ns_.push_back(realtime_ns());
            }
            ++requests_;
            const std::string reply =
                up ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
                   : "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
            if (!test::write_all(fd, reply)) return;
          }
        }) {}

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(server_.port()) + "/v1/batches";
  }
  void set_up(bool up) { up_ = up; }
  int requests() const { return requests_; }
  std::vector<std::string> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  // The keys of the requests answered 503, and when each request came.
  std::vector<std::string> refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }
  std::vector<std::uint64_t> request_times_ns() {
    std::lock_guard lock(mu_);
    return request_at_ns_;
  }

 private:
  std::atomic<bool> up_{false};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::vector<std::string> acked_, refused_;
  std::vector<std::uint64_t> request_at_ns_;
  test::LoopbackServer server_;
};

TEST(ShipperBackoff, ADownServerGetsFewerRequestsAsItStaysDownHoweverManyBatchesWait) {
  test::TempDir dir;
  queue::OutboxOptions options;
  options.path = dir / "outbox.db";
  options.sinks = {"s"};
  auto outbox = queue::Outbox::open(options, realtime_ns());
  ASSERT_TRUE(outbox.ok()) << outbox.error().message();
  samples::ProcessSample sample;
  sample.host = "web-1";
  sample.pid = 42;
  sample.comm = "worker";
  for (int i = 0; i < 20; ++i) {  // twenty batches wait
    sample.cpu_ns = static_cast<std::uint64_t>(i);
    const std::vector<std::string> lines{samples::to_json_line(sample)};
    ASSERT_TRUE((*outbox)->append(lines, realtime_ns()));
  }

  FlakyServer server;
  ShipperOptions so;
  so.sink = "s";
  so.url = server.url();
  so.agent_id = (*outbox)->agent_id();
  so.backoff.base = 100ms;
  so.backoff.cap = 10s;
  Shipper shipper(**outbox, so, std::make_unique<NativeFormat>(so.agent_id, "web-1"));
  shipper.start();
  // Until five attempts have failed (delays of up to 0.1, 0.2, 0.4, 0.8 s).
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (shipper.status().requests_failed < 5 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_GE(shipper.status().requests_failed, 5u);
  EXPECT_EQ(shipper.status().state, SinkState::failing);
  // Every attempt was the head batch's: the sink backs off, not each of the
  // twenty batches with a first try of its own.
  for (const auto& key : server.refused()) EXPECT_EQ(key, so.agent_id + ":1");

  // Batches formed during the outage do not cut the backoff short: no
  // request comes before the retry time the shipper set.
  const SinkStatus before = shipper.status();
  const int requests_before = server.requests();
  for (int i = 0; i < 5; ++i) {
    const std::vector<std::string> lines{samples::to_json_line(sample)};
    ASSERT_TRUE((*outbox)->append(lines, realtime_ns()));
    shipper.notify();
  }
  const auto next_deadline = std::chrono::steady_clock::now() + 30s;
  while (server.requests() == requests_before && std::chrono::steady_clock::now() < next_deadline) {
    std::this_thread::sleep_for(5ms);
  }
  const auto times = server.request_times_ns();
  ASSERT_GT(times.size(), static_cast<std::size_t>(requests_before));
  // The clock of the server and the shipper is the same: allow 5 ms.
  EXPECT_GE(times[static_cast<std::size_t>(requests_before)] + 5'000'000, before.next_retry_ns)
      << "a request came before the retry time";

  server.set_up(true);
  shipper.flush_now(std::chrono::steady_clock::now() + 10s);
  for (int i = 0; i < 200 && server.acked().size() < 25; ++i) std::this_thread::sleep_for(50ms);
  shipper.stop();
  const auto acked = server.acked();
  ASSERT_EQ(acked.size(), 25u);
  for (std::size_t i = 0; i < acked.size(); ++i) {
    EXPECT_EQ(acked[i], so.agent_id + ":" + std::to_string(i + 1)) << "in seq order";
  }
  EXPECT_EQ(shipper.status().state, SinkState::healthy);
}

}  // namespace
}  // namespace tally::shipping
