// tallyd's /metrics (--prometheus-listen) under hostile clients: raw bytes
// over loopback to a real tallyd. Oversized trailers and chunk extensions,
// requests that never end, floods of connections from one address and from
// many; then a scrape and `tally status` must still answer.
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http_get.h"
#include "process_usage.h"
#include "raw_client.h"
#include "tally_cli.h"
#include "tallyd_run.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;

struct Exporter {
  TallydRun run{{"--interval", "1", "--prometheus-listen", "127.0.0.1:0"}};
  std::string socket = run.dir() / "tally.sock";
  std::string address;  // 127.0.0.1:PORT

  bool ready() {
    if (!run.wait_ready("control socket")) return false;
    std::smatch m;
    const std::string err = run.process().stderr_text();
    if (!std::regex_search(err, m, std::regex("listening on (127\\.0\\.0\\.1:[0-9]+)")))
      return false;
    address = m[1];
    return true;
  }

  nlohmann::json status() { return tally_status_json(socket); }

  // tallyd is alive, Prometheus gets its page, `tally status` answers.
  void expect_serving() {
    ASSERT_FALSE(run.process().wait(0ms).has_value()) << run.process().stderr_text();
    const HttpResult page = http_get("http://" + address + "/metrics");
    EXPECT_EQ(page.status, 200);
    EXPECT_NE(page.body.find("tally_samples_committed_total"), std::string::npos);
    auto r = run_tally(socket, {"status"}, 60s);
    EXPECT_NE(r.exit_code, 2) << r.err;
  }
};

class ExporterUnderAttack : public ::testing::Test {
 protected:
  void SetUp() override { TALLY_REQUIRE_BPF(); }
};

const std::string kChunkedGet =
    "GET /metrics HTTP/1.1\r\nHost: tallyd\r\nTransfer-Encoding: chunked\r\n\r\n";

// The repro and its kin: Beast throws on a trailer field over 64 KiB
// (that aborted tallyd); every such request gets a 4xx and tallyd lives.
TEST_F(ExporterUnderAttack, OversizedTrailersAndExtensionsGetA4xxAndTallydLives) {
  Exporter e;
  ASSERT_TRUE(e.ready()) << e.run.process().stderr_text();
  const std::string big(70000, 'a');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"trailer value 70,000 bytes", kChunkedGet + "0\r\nX-Trailer: " + big + "\r\n\r\n"},
      {"trailer on another path",
       "GET /elsewhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + big +
           "\r\n\r\n"},
      {"trailer name 70,000 bytes", kChunkedGet + "0\r\n" + big + ": v\r\n\r\n"},
      {"three trailers of 30,000 bytes", kChunkedGet + "0\r\nX-A: " + std::string(30000, 'a') +
                                             "\r\nX-B: " + std::string(30000, 'b') +
                                             "\r\nX-C: " + std::string(30000, 'c') + "\r\n\r\n"},
      {"chunk extension 70,000 bytes", kChunkedGet + "0;ext=" + big + "\r\n\r\n"},
      {"many chunk extensions",
       [] {
         std::string exts;
         for (int i = 0; i < 10000; ++i) exts += ";e" + std::to_string(i) + "=v";
         return kChunkedGet + "0" + exts + "\r\n\r\n";
       }()},
  };
  for (const auto& [name, request] : cases) {
    SCOPED_TRACE(name);
    RawClient c = RawClient::tcp(e.address);
    ASSERT_TRUE(c.valid());
    c.send(request);
    const auto reply = c.read_to_end(30s);
    ASSERT_TRUE(reply.has_value()) << "tallyd kept the connection open";
    EXPECT_TRUE(reply->rfind("HTTP/1.1 4", 0) == 0) << reply->substr(0, 200);
    ASSERT_FALSE(e.run.process().wait(0ms).has_value()) << e.run.process().stderr_text();
  }
  e.expect_serving();
  EXPECT_GE(e.status()["prometheus"].value("requests_refused", 0u), cases.size());
}

// Requests that never end: tallyd must stop reading after a bounded amount
// (the issue saw 1.5 GiB of chunk extension take it to 2.9 GB), so the
// connection ends long before the 64 MiB a client here tries to send.
TEST_F(ExporterUnderAttack, RequestsThatNeverEndAreCutOffEarly) {
  Exporter e;
  ASSERT_TRUE(e.ready()) << e.run.process().stderr_text();
  constexpr std::size_t kTry = 64 << 20;
  struct Case {
    std::string name;
    std::string start;
    std::string repeated;
  };
  const std::vector<Case> cases = {
      {"endless chunk extension", kChunkedGet + "0;", std::string(65536, 'e')},
      {"endless trailer fields", kChunkedGet + "0\r\n", "X-Trailer: value\r\n"},
      {"endless trailer value", kChunkedGet + "0\r\nX-T: ", std::string(65536, 't')},
      {"endless header", "GET /metrics HTTP/1.1\r\nX-H: ", std::string(65536, 'h')},
      {"endless target", "GET /", std::string(65536, 'p')},
      {"endless body", "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n",
       std::string(65536, 'b')},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawClient client = RawClient::tcp(e.address);
    ASSERT_TRUE(client.valid());
    ASSERT_TRUE(client.send(c.start));
    const std::size_t sent = client.send_repeated(c.repeated, kTry, 30s);
    EXPECT_LT(sent, kTry) << "tallyd took all of it";
    EXPECT_TRUE(client.read_to_end(30s).has_value()) << "tallyd neither read on nor closed";
    ASSERT_FALSE(e.run.process().wait(0ms).has_value()) << e.run.process().stderr_text();
    EXPECT_LT(rss_bytes(e.run.process().pid()), 64u << 20);
  }
  e.expect_serving();
}

// Idle connections from one address, then from many: tallyd holds a
// bounded number (16 per address, 64 in all), closing the oldest, and a
// scrape from yet another address is answered.
TEST_F(ExporterUnderAttack, ConnectionsAreBoundedPerAddressAndInTotal) {
  Exporter e;
  ASSERT_TRUE(e.ready()) << e.run.process().stderr_text();
  const pid_t pid = e.run.process().pid();
  const std::size_t baseline = open_fds(pid);

  std::vector<RawClient> one_address;
  for (int i = 0; i < 40; ++i) {
    one_address.push_back(RawClient::tcp(e.address, "127.0.0.2"));
    ASSERT_TRUE(one_address.back().valid());
  }
  // The first ones were closed by tallyd to make room for the later ones.
  EXPECT_EQ(one_address.front().read_to_end(30s), std::optional<std::string>(""));
  auto s = e.status();
  EXPECT_LE(s["prometheus"].value("connections", 999u), 16u) << s["prometheus"];

  std::vector<RawClient> many_addresses;
  for (int a = 3; a < 11; ++a) {
    for (int i = 0; i < 20; ++i) {
      many_addresses.push_back(RawClient::tcp(e.address, "127.0.0." + std::to_string(a)));
      ASSERT_TRUE(many_addresses.back().valid());
    }
  }
  e.expect_serving();
  s = e.status();
  EXPECT_LE(s["prometheus"].value("connections", 999u), 64u) << s["prometheus"];
  EXPECT_GT(s["prometheus"].value("connections_evicted", 0u), 0u) << s["prometheus"];
  EXPECT_LE(open_fds(pid), baseline + 64 + 4);
}

}  // namespace
}  // namespace tally::test
