// Every delivery path of the shipper, without a socket: a scripted
// HttpPoster answers each request, and a real outbox (SQLite in a temp dir)
// holds the batches. What each answer must lead to: 2xx acknowledged,
// retryable with Retry-After honoured, 413 split into pieces that keep their
// identity, a permanent 4xx dead-lettered, a partial success counted, a
// transport error backed off, and a stored batch that cannot be read set
// aside rather than blocking the ones after it.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "samples/json_line.h"
#include "shipping/native_format.h"
#include "shipping/otlp_format.h"
#include "shipping/shipper.h"
#include "tally/time_util.h"
#include "temp_dir.h"

namespace tally::shipping {
namespace {

using namespace std::chrono_literals;

// Answers from a script, then 200 once the script runs out; records the
// Idempotency-Key of every request.
class ScriptedPoster final : public HttpPoster {
 public:
  using Answer = Result<HttpResponse>;
  explicit ScriptedPoster(std::deque<Answer> script) : script_(std::move(script)) {}

  Result<HttpResponse> post(const std::string&, const std::string&,
                            const std::vector<std::string>& headers) override {
    std::lock_guard lock(*mu_);
    std::string key = "?";
    for (const auto& h : headers) {
      if (h.starts_with("Idempotency-Key: ")) key = h.substr(17);
    }
    keys_->push_back(key);
    if (script_.empty()) return HttpResponse{200, "{}", std::nullopt};
    Answer next = std::move(script_.front());
    script_.pop_front();
    return next;
  }

  // Shared with the test after the poster moves into the shipper.
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  std::shared_ptr<std::vector<std::string>> keys_ = std::make_shared<std::vector<std::string>>();

 private:
  std::deque<Answer> script_;
};

HttpResponse answer(long status, std::string body = {},
                    std::optional<std::string> retry_after = std::nullopt) {
  return HttpResponse{status, std::move(body), std::move(retry_after)};
}

std::string process_line(std::uint32_t pid) {
  samples::ProcessSample s;
  s.ts_ns = 1'700'000'060'000'000'000ULL;
  s.interval_ns = 60'000'000'000ULL;
  s.host = "web-1";
  s.pid = pid;
  s.comm = "worker";
  s.cpu_ns = pid * 1000ULL;
  return samples::to_json_line(s);
}

class ShipperDelivery : public ::testing::Test {
 protected:
  void SetUp() override {
    queue::OutboxOptions options;
    options.path = dir_ / "outbox.db";
    options.sinks = {"s"};
    auto opened = queue::Outbox::open(options, realtime_ns());
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    outbox_ = std::move(*opened);
  }

  // One batch of n process samples.
  void add_batch(std::uint32_t n) {
    std::vector<std::string> lines;
    for (std::uint32_t i = 0; i < n; ++i) lines.push_back(process_line(100 + i));
    ASSERT_TRUE(outbox_->append(lines, realtime_ns()).ok());
    ASSERT_TRUE(outbox_->form_all(realtime_ns()).ok());
  }

  // Starts a shipper over the script, waits until `done` holds of its
  // status (or 10 s pass), and returns the keys it sent.
  std::vector<std::string> ship(std::deque<ScriptedPoster::Answer> script,
                                const std::function<bool(const SinkStatus&)>& done,
                                std::unique_ptr<SinkFormat> format = nullptr) {
    auto poster = std::make_unique<ScriptedPoster>(std::move(script));
    auto mu = poster->mu_;
    auto keys = poster->keys_;
    ShipperOptions so;
    so.sink = "s";
    so.url = "http://sink.invalid/v1/batches";
    so.agent_id = outbox_->agent_id();
    so.backoff.base = 20ms;
    so.backoff.cap = 5s;  // above the Retry-After a test sends
    if (!format) format = std::make_unique<NativeFormat>(so.agent_id, "web-1");
    shipper_ = std::make_unique<Shipper>(*outbox_, so, std::move(format), std::move(poster));
    shipper_->start();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done(shipper_->status()) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    status_ = shipper_->status();
    shipper_->stop();
    std::lock_guard lock(*mu);
    return *keys;
  }

  std::uint64_t pending() {
    auto stats = outbox_->stats(realtime_ns());
    EXPECT_TRUE(stats.ok());
    return stats.ok() ? stats->pending_batches : 0;
  }

  test::TempDir dir_;
  std::unique_ptr<queue::Outbox> outbox_;
  std::unique_ptr<Shipper> shipper_;
  SinkStatus status_;
};

TEST_F(ShipperDelivery, A2xxAcknowledgesTheBatch) {
  add_batch(3);
  const auto keys =
      ship({answer(200, "{}")}, [](const SinkStatus& s) { return s.batches_sent >= 1; });
  EXPECT_EQ(keys, std::vector<std::string>{outbox_->agent_id() + ":1"});
  EXPECT_EQ(status_.state, SinkState::healthy);
  EXPECT_EQ(status_.samples_sent, 3u);
  EXPECT_EQ(pending(), 0u);
}

TEST_F(ShipperDelivery, ARetryableAnswerBacksOffForItsRetryAfterAndSendsTheSameBatchAgain) {
  add_batch(2);
  const std::uint64_t before = realtime_ns();
  std::uint64_t next_retry = 0;
  const auto keys = ship({answer(503, "busy", "1")}, [&](const SinkStatus& s) {
    if (s.next_retry_ns) next_retry = s.next_retry_ns;
    return s.batches_sent >= 1;
  });
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], keys[1]) << "the same batch, the same identity";
  // Retry-After: 1 overrides the 20 ms backoff.
  EXPECT_GE(next_retry, before + 900'000'000ULL);
  EXPECT_EQ(status_.requests_failed, 1u);
  EXPECT_EQ(status_.state, SinkState::healthy);
}

TEST_F(ShipperDelivery, A413SplitsTheBatchIntoPiecesThatKeepTheirFirstIndex) {
  add_batch(4);
  const std::string id = outbox_->agent_id();
  const auto keys =
      ship({answer(413), answer(413)}, [](const SinkStatus& s) { return s.batches_sent >= 1; });
  // 0..3 refused, then 0..1 refused, then 0, 1 and 2..3 accepted.
  EXPECT_EQ(keys, (std::vector<std::string>{id + ":1", id + ":1:0", id + ":1:0", id + ":1:1",
                                            id + ":1:2"}));
  EXPECT_EQ(status_.samples_sent, 4u);
  EXPECT_EQ(status_.batches_rejected, 0u);
  EXPECT_EQ(pending(), 0u);
}

TEST_F(ShipperDelivery, APermanent4xxDeadLettersTheBatchAndTheNextOneStillGoes) {
  add_batch(2);
  add_batch(2);
  const std::string id = outbox_->agent_id();
  // Batch 1 refused; batch 2 delivered; the gap record (3) declares batch 1's loss.
  const auto keys =
      ship({answer(422, "no")}, [](const SinkStatus& s) { return s.batches_sent >= 2; });
  EXPECT_EQ(keys, (std::vector<std::string>{id + ":1", id + ":2", id + ":3"}));
  EXPECT_EQ(status_.gap_records, 1u);
  EXPECT_EQ(status_.batches_rejected, 1u);
  EXPECT_EQ(status_.samples_rejected, 2u);
  auto stats = outbox_->stats(realtime_ns());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->dead_letters, 1u);
  EXPECT_EQ(stats->pending_batches, 0u);
}

TEST_F(ShipperDelivery, APartialSuccessIsAcknowledgedAndCounted) {
  add_batch(2);
  OtlpOptions o;
  o.scope_version = "test";
  ship(
      {answer(200, R"({"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"too old"}})")},
      [](const SinkStatus& s) { return s.batches_sent >= 1; }, std::make_unique<OtlpFormat>(o));
  EXPECT_EQ(status_.partial_successes, 1u);
  EXPECT_EQ(status_.points_rejected, 3u);
  EXPECT_EQ(pending(), 0u);
}

TEST_F(ShipperDelivery, ATransportErrorBacksOffAndSaysWhy) {
  add_batch(1);
  const auto keys = ship({Error("connection refused by sink.invalid")},
                         [](const SinkStatus& s) { return s.batches_sent >= 1; });
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_EQ(status_.requests_failed, 1u);
  EXPECT_EQ(status_.consecutive_failures, 0u) << "cleared by the success after it";
  EXPECT_NE(status_.last_error.find("connection refused"), std::string::npos) << status_.last_error;
}

TEST_F(ShipperDelivery, AStoredBatchThatCannotBeReadIsSetAsideAndTheNextOneGoes) {
  const std::vector<std::string> damaged{R"({"kind":"process","ts_ns":"x"})"};
  ASSERT_TRUE(outbox_->append(damaged, realtime_ns()).ok());
  ASSERT_TRUE(outbox_->form_all(realtime_ns()).ok());
  add_batch(1);
  const auto keys = ship({}, [](const SinkStatus& s) { return s.batches_sent >= 2; });
  // Batch 1 never goes out; batch 2 does, and the gap record (3) declares batch 1.
  const std::string id = outbox_->agent_id();
  EXPECT_EQ(keys, (std::vector<std::string>{id + ":2", id + ":3"}));
  EXPECT_EQ(status_.batches_rejected, 1u);
  auto stats = outbox_->stats(realtime_ns());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->dead_letters, 1u);
}

}  // namespace
}  // namespace tally::shipping
