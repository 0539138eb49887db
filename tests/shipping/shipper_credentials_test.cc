// The shipper against a real HTTP server on loopback that refuses the
// credentials until the token is rotated: batches wait rather than being
// dead-lettered, the status says why, and a new token in the token file is
// picked up without a restart. And URLs shown anywhere carry no secrets.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "loopback_server.h"
#include "samples/compact_records.h"
#include "samples/json_line.h"
#include "shipping/native_format.h"
#include "shipping/otlp_format.h"
#include "shipping/shipper.h"
#include "tally/time_util.h"
#include "temp_dir.h"

namespace tally::shipping {
namespace {

using namespace std::chrono_literals;

// Acknowledges requests that carry "Authorization: Bearer <accepted>" and
// answers `refusal` (401 or 403) to every other one.
class TokenCheckingServer {
 public:
  TokenCheckingServer(std::string accepted, int refusal)
      : accepted_("Authorization: Bearer " + std::move(accepted) + "\r\n"),
        refusal_(refusal),
        server_("token-checking server", [this](int fd) {
          std::string buffer, head, body;
          while (test::read_http_request(fd, buffer, head, body)) {
            const bool ok = head.find(accepted_) != std::string::npos;
            if (ok) {
              ++acked_;
            } else {
              ++refused_;
            }
            const std::string reply = ok ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
                                         : "HTTP/1.1 " + std::to_string(refusal_) +
                                               " Refused\r\nContent-Length: "
                                               "32\r\n\r\n{\"error\":\"missing bearer token\"}";
            if (!test::write_all(fd, reply)) return;
          }
        }) {}

  std::string base() const { return "127.0.0.1:" + std::to_string(server_.port()); }
  int acked() const { return acked_; }
  int refused() const { return refused_; }

 private:
  const std::string accepted_;
  const int refusal_;
  std::atomic<int> acked_{0};
  std::atomic<int> refused_{0};
  test::LoopbackServer server_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

class ShipperCredentials : public ::testing::TestWithParam<int> {};

TEST_P(ShipperCredentials, ARefusedTokenKeepsTheBatchesUntilTheTokenFileHoldsTheNewOne) {
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
  constexpr int kBatches = 14;
  for (int i = 0; i < kBatches; ++i) {
    sample.cpu_ns = static_cast<std::uint64_t>(i);
    const std::vector<std::string> lines{samples::to_json_line(sample)};
    ASSERT_TRUE((*outbox)->append(lines, realtime_ns()));
  }

  TokenCheckingServer server("rotated-token", GetParam());
  const std::string token_file = dir / "token";
  write_file(token_file, "old-token\n");
  ShipperOptions so;
  so.sink = "s";
  so.url = "http://" + server.base() + "/v1/batches";
  so.agent_id = (*outbox)->agent_id();
  so.bearer_token = "old-token";
  so.reload_token = [&]() -> Result<std::string> {
    std::ifstream in(token_file);
    std::string token;
    in >> token;
    return token;
  };
  so.backoff.base = 50ms;
  so.backoff.cap = 200ms;
  Shipper shipper(**outbox, so, std::make_unique<NativeFormat>(so.agent_id, "web-1"));
  shipper.start();
  for (int i = 0; i < 200 && server.refused() < 4; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_GE(server.refused(), 4);

  // Refused again and again, and nothing is given up.
  const SinkStatus failing = shipper.status();
  EXPECT_EQ(failing.state, SinkState::failing);
  EXPECT_EQ(failing.batches_rejected, 0u);
  EXPECT_EQ(failing.samples_rejected, 0u);
  EXPECT_NE(failing.last_error.find("HTTP " + std::to_string(GetParam())), std::string::npos)
      << failing.last_error;
  EXPECT_NE(failing.last_error.find("refuses tally's credentials"), std::string::npos)
      << failing.last_error;
  auto stats = (*outbox)->stats(realtime_ns());
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->dead_letters, 0u);
  EXPECT_EQ(stats->pending_batches, static_cast<std::uint64_t>(kBatches));
  EXPECT_EQ(server.acked(), 0);

  // The operator rotates the token: the next retry reads it.
  write_file(token_file, "rotated-token\n");
  for (int i = 0; i < 300 && server.acked() < kBatches; ++i) std::this_thread::sleep_for(20ms);
  shipper.stop();
  EXPECT_EQ(server.acked(), kBatches);
  EXPECT_EQ(shipper.status().state, SinkState::healthy);
  EXPECT_EQ(shipper.status().batches_sent, static_cast<std::uint64_t>(kBatches));
  stats = (*outbox)->stats(realtime_ns());
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->pending_batches, 0u);
  EXPECT_EQ(stats->dead_letters, 0u);
}

INSTANTIATE_TEST_SUITE_P(Refusals, ShipperCredentials, ::testing::Values(401, 403));

// Every format retries a refusal: none may dead-letter data over a token.
TEST(SinkFormats, EveryFormatRetriesRefusedCredentials) {
  NativeFormat native("a", "h");
  OtlpOptions otlp_options;
  OtlpFormat otlp(otlp_options);
  for (long status : {401L, 403L}) {
    EXPECT_EQ(native.classify(status), Outcome::retry) << status;
    EXPECT_EQ(otlp.classify(status), Outcome::retry) << status;
  }
}

TEST(ShipperUrls, NeitherStatusNorErrorsShowTheCredentialsOfTheUrl) {
  test::TempDir dir;
  queue::OutboxOptions options;
  options.path = dir / "outbox.db";
  options.sinks = {"s"};
  auto outbox = queue::Outbox::open(options, realtime_ns());
  ASSERT_TRUE(outbox.ok()) << outbox.error().message();
  samples::ProcessSample sample;
  sample.host = "web-1";
  sample.comm = "worker";
  const std::vector<std::string> lines{samples::to_json_line(sample)};
  ASSERT_TRUE((*outbox)->append(lines, realtime_ns()));

  // Both ways a failure is reported: an HTTP refusal, and a transport error
  // (a port nobody listens on, found by binding and closing a server).
  std::string dead_base;
  {
    TokenCheckingServer gone("x", 401);
    dead_base = gone.base();
  }
  TokenCheckingServer server("never", 401);
  for (const std::string& base : {server.base(), dead_base}) {
    ShipperOptions so;
    so.sink = "s";
    so.url = "http://alice:s3cr3t-pw@" + base + "/write?db=tally&apikey=k3y-value&u=bob&p=hunter2";
    so.agent_id = (*outbox)->agent_id();
    so.backoff.base = 50ms;
    Shipper shipper(**outbox, so, std::make_unique<NativeFormat>(so.agent_id, "web-1"));
    shipper.start();
    for (int i = 0; i < 200 && shipper.status().last_error.empty(); ++i) {
      std::this_thread::sleep_for(20ms);
    }
    shipper.stop();
    const SinkStatus st = shipper.status();
    ASSERT_FALSE(st.last_error.empty());
    for (const std::string& shown : {st.url, st.last_error}) {
      for (const char* secret : {"s3cr3t-pw", "k3y-value", "hunter2", "alice"}) {
        EXPECT_EQ(shown.find(secret), std::string::npos) << secret << " in: " << shown;
      }
      // Where the data goes is still shown.
      EXPECT_NE(shown.find(base + "/write?db=tally"), std::string::npos) << shown;
    }
  }
}

}  // namespace
}  // namespace tally::shipping
