// tally-collector as a real process on loopback with a real database:
// the protocol end to end, misbehaving clients, crashes and shutdown.
#include <signal.h>

#include <gtest/gtest.h>

#include "samples/json_line.h"

#include <chrono>
#include <fstream>
#include <thread>

#include "collector_test_support.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;

class CollectorServer : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    collector_ = std::make_unique<CollectorProcess>(db_, std::move(extra));
    ASSERT_TRUE(collector_->started()) << collector_->process().stderr_text();
  }
  void SetUp() override { start(); }

  HttpResponse post(const std::string& body, const Headers& headers = {}) {
    return conn().post_json(body, headers);
  }
  HttpResponse get(const std::string& target) { return conn().get(target); }
  HttpResponse get(const std::string& target, const Headers& headers) {
    return conn().request("GET", target, {}, headers);
  }
  HttpConnection& conn() {
    if (!conn_ || !conn_->connected()) conn_ = std::make_unique<HttpConnection>(collector_->port());
    return *conn_;
  }
  nlohmann::json agent(const std::string& id) {
    nlohmann::json agents = get("/v1/agents").json();
    for (const auto& a : agents["agents"]) {
      if (a["agent_id"] == id) return a;
    }
    return nullptr;
  }

  TempDir dir_;
  std::string db_ = dir_ / "collector.db";
  std::unique_ptr<CollectorProcess> collector_;
  std::unique_ptr<HttpConnection> conn_;
  std::vector<std::string> lines_ = agent_lines("web-1", 1'700'000'000'000'000'000, 20);
};

TEST_F(CollectorServer, StoresABatchAndServesItBack) {
  HttpResponse r = post(samples_body("agent-1", "web-1", 1, lines_));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json(), nlohmann::json::parse(R"({"stored":20,"duplicate":false})"));
  HttpResponse s = get("/v1/samples?host=web-1&limit=100");
  ASSERT_EQ(s.status, 200) << s.body;
  auto samples = s.json()["samples"];
  ASSERT_EQ(samples.size(), 20u);
  for (std::size_t i = 0; i < lines_.size(); ++i) {
    EXPECT_EQ(samples[i], nlohmann::json::parse(lines_[i])) << i;
  }
  EXPECT_EQ(s.json()["truncated"], false);
}

// Cgroup lines (protocol version 3) are stored among the batch's samples and
// served back as received; a version 2 body cannot carry them.
TEST_F(CollectorServer, StoresCgroupLinesOfVersion3AndServesThemBack) {
  samples::CgroupSample c;
  c.ts_ns = 1'700'000'000'000'000'000;
  c.interval_ns = 60'000'000'000;
  c.host = "web-1";
  c.cgroup = "/docker/abc";
  c.container_id = "abc";
  c.container_runtime = "docker";
  c.processes = 2;
  c.process_cpu_ns = 5'000'000;
  c.usage_known = c.throttling_known = true;
  c.cpu_ns = 5'100'000;
  c.cpu_pct = samples::percent(c.cpu_ns, c.interval_ns);
  c.nr_periods = 600;
  c.nr_throttled = 30;
  c.throttled_ns = 1'500'000'000;
  c.limit_cpus = 0.5;
  std::vector<std::string> lines = lines_;
  lines.insert(lines.begin() + 3, samples::to_json_line(c));
  std::string body = samples_body("agent-1", "web-1", 1, lines);
  const std::string v1 = R"("version":1)";
  body.replace(body.find(v1), v1.size(), R"("version":2)");
  HttpResponse refused = post(body);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("cgroup lines need protocol version 3"), std::string::npos)
      << refused.body;
  body.replace(body.find(R"("version":2)"), v1.size(), R"("version":3)");
  HttpResponse r = post(body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["stored"], 21);
  HttpResponse s = get("/v1/samples?host=web-1&limit=100");
  ASSERT_EQ(s.status, 200) << s.body;
  auto served = s.json()["samples"];
  ASSERT_EQ(served.size(), lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(served[i], nlohmann::json::parse(lines[i])) << i;
  }
  // Not a process: a pid filter leaves it out.
  HttpResponse pid = get("/v1/samples?host=web-1&pid=100&limit=100");
  ASSERT_EQ(pid.status, 200) << pid.body;
  const nlohmann::json of_pid = pid.json()["samples"];
  ASSERT_FALSE(of_pid.empty()) << pid.body;
  for (const auto& sample : of_pid) EXPECT_EQ(sample["kind"], "process");
}

// Series over HTTP, as the page and a spreadsheet read them. Raw here (a
// 10-second step): rollups are summed once a minute is over.
TEST_F(CollectorServer, ServesSeriesAsJsonAndCsvAndNamesABadParameter) {
  ASSERT_EQ(post(samples_body("agent-1", "web-1", 1, lines_)).status, 200);
  const std::uint64_t ts = 1'700'000'000'000'000'000;
  const std::string window = "&from=" + std::to_string(ts - 10'000'000'000) +
                             "&to=" + std::to_string(ts + 10'000'000'000) + "&step=10";
  HttpResponse r = get("/v1/series?host=web-1&group_by=comm&top=3" + window);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  EXPECT_EQ(j["source"], "raw");
  EXPECT_EQ(j["points"], 2);
  ASSERT_EQ(j["series"].size(), 3u);
  // 19 processes: pid 100 + i uses (i + 1) us; the top is worker-118.
  EXPECT_EQ(j["series"][0]["name"], "worker-118");
  EXPECT_EQ(j["series"][0]["cpu_ns"][1], 19000);
  EXPECT_TRUE(j["series"][0]["cpu_ns"][0].is_null()) << "no data before the sample: a gap";
  EXPECT_EQ(j["total"]["cpu_ns"][1], 19 * 20 / 2 * 1000);
  EXPECT_EQ(j["other"]["cpu_ns"][1], (19 * 20 / 2 - 19 - 18 - 17) * 1000);

  HttpResponse csv = get("/v1/series?host=web-1&group_by=comm&top=3&format=csv" + window);
  ASSERT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.headers["content-type"], "text/csv; charset=utf-8");
  EXPECT_EQ(csv.body.substr(0, csv.body.find("\r\n")),
            "time_ns,series,name,host,comm,cpu_ns,cpu_cores,rss_bytes");
  EXPECT_NE(csv.body.find(std::to_string(ts) + ",group,worker-118,,,19000,0.000002,"),
            std::string::npos)
      << csv.body;
  HttpResponse accept = get("/v1/series?host=web-1" + window, {{"Accept", "text/csv"}});
  EXPECT_EQ(accept.headers["content-type"], "text/csv; charset=utf-8");

  HttpResponse bad = get("/v1/series?group_by=pod");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["error"], "group_by: expected host, comm, cgroup or process, got \"pod\"");
}

// The agent's User-Agent is shown on the page as its software: any
// client's text, so stored cut to 64 bytes of printable ASCII (control
// characters the HTTP parser refuses; bytes above 0x7f it lets through).
TEST_F(CollectorServer, AnAgentsSoftwareIsItsUserAgentCutAndMadePrintable) {
  const std::string user_agent = "tallyd/1.2.3 \xc3\xa9<script>" + std::string(200, 'z');
  HttpResponse r = post(samples_body("agent-1", "web-1", 1, lines_), {{"User-Agent", user_agent}});
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json a = agent("agent-1");
  const std::string software = a["software"];
  EXPECT_EQ(software.size(), 64u);
  EXPECT_EQ(software.substr(0, 24),
            "tallyd/1.2.3 ?"
            "?<script>z");
  EXPECT_GT(a["last_seen_ns"].get<std::uint64_t>(), 1'700'000'000'000'000'000u);
}

TEST_F(CollectorServer, KeepsTheConnectionAliveAcrossRequests) {
  HttpConnection c(collector_->port());
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    HttpResponse r = c.post_json(samples_body("a", "h", seq, lines_));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers.count("connection"), 0u) << "no Connection: close";
  }
  const auto health = c.get("/healthz").json();
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["housekeeping"]["late_buckets"], 0);
}

TEST_F(CollectorServer, DuplicateBatchIsAckedButNotStoredTwice) {
  std::string body = samples_body("a", "web-1", 1, lines_);
  ASSERT_EQ(post(body).status, 200);
  HttpResponse again = post(body);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json(), nlohmann::json::parse(R"({"stored":0,"duplicate":true})"));
  EXPECT_EQ(get("/v1/samples?limit=1000").json()["samples"].size(), 20u);
  EXPECT_EQ(agent("a")["duplicates_rejected"], 20);
  EXPECT_EQ(agent("a")["samples_stored"], 20);
}

TEST_F(CollectorServer, PiecesWithDifferentSplitsStoreEachSampleOnce) {
  auto stored = [&](std::size_t first, std::size_t n) {
    HttpResponse r = post(samples_body("a", "web-1", 9, lines_, first, n));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json()["stored"].get<int>();
  };
  EXPECT_EQ(stored(0, 7), 7);
  EXPECT_EQ(stored(14, 6), 6);
  EXPECT_EQ(agent("a")["partial"],
            nlohmann::json::parse(R"([{"seq":9,"batch_samples":20,"stored":13}])"));
  EXPECT_EQ(stored(0, 10), 3);
  EXPECT_EQ(stored(10, 10), 4);
  HttpResponse whole = post(samples_body("a", "web-1", 9, lines_));
  EXPECT_EQ(whole.json()["duplicate"], true);
  auto samples = get("/v1/samples?limit=1000").json()["samples"];
  EXPECT_EQ(samples.size(), 20u);
  EXPECT_EQ(agent("a")["partial"], nlohmann::json::array());
}

TEST_F(CollectorServer, AcceptsGzipAndIdentityBodies) {
  HttpResponse zipped =
      post(gzip(samples_body("a", "h", 1, lines_)), {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(zipped.status, 200) << zipped.body;
  EXPECT_EQ(zipped.json()["stored"], 20);
  HttpResponse plain = post(samples_body("a", "h", 2, lines_), {{"Content-Encoding", "identity"}});
  EXPECT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.json()["stored"], 20);
  EXPECT_EQ(agent("a")["samples_stored"], 40);
}

TEST_F(CollectorServer, AcceptsAChunkedBody) {
  std::string body = samples_body("a", "h", 1, lines_);
  std::string chunked;
  for (std::size_t i = 0; i < body.size(); i += 1000) {
    std::string part = body.substr(i, 1000);
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    chunked += size + part + "\r\n";
  }
  chunked += "0\r\n\r\n";
  HttpResponse r =
      conn().request("POST", "/v1/batches", chunked,
                     {{"Content-Type", "application/json"}, {"Transfer-Encoding", "chunked"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["stored"], 20);
}

struct BadRequest {
  std::string name;
  std::string body;
  std::string error;
};

void PrintTo(const BadRequest& b, std::ostream* os) { *os << b.name; }

class CollectorServerRejects : public CollectorServer,
                               public ::testing::WithParamInterface<BadRequest> {};

TEST_P(CollectorServerRejects, With400NamingTheField) {
  HttpResponse r = post(GetParam().body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json()["error"], GetParam().error);
  // The connection stays usable after a 400.
  EXPECT_EQ(post(samples_body("a", "h", 1, lines_)).status, 200);
}

std::string with_sample_edit(const std::string& from, const std::string& to) {
  std::vector<std::string> lines = agent_lines("h", 1, 5);
  std::string& line = lines[3];
  line.replace(line.find(from), from.size(), to);
  return samples_body("a", "h", 1, lines);
}

INSTANTIATE_TEST_SUITE_P(
    Table, CollectorServerRejects,
    ::testing::Values(
        BadRequest{"MalformedJson", "{\"version\":1,\"agent_id\":",
                   "invalid JSON: parse error at line 1, column 25: syntax error while parsing "
                   "value - unexpected end of input; expected '[', '{', or a literal"},
        BadRequest{"MissingField", R"({"version":1,"agent_id":"a","seq":1,"kind":"gap"})",
                   "host: missing"},
        BadRequest{"WrongType", with_sample_edit("\"cpu_ns\":4000", "\"cpu_ns\":\"4000\""),
                   "samples[3].cpu_ns: expected unsigned integer, got string"},
        BadRequest{
            "UnknownKind", with_sample_edit("\"kind\":\"process\"", "\"kind\":\"disk\""),
            R"(samples[3].kind: unknown kind "disk" (expected "process", "host" or "cgroup"))"},
        BadRequest{"VersionMismatch",
                   R"({"version":4,"agent_id":"a","host":"h","seq":1,"kind":"samples"})",
                   "version: unsupported version 4 (this collector speaks 1 to 3)"}),
    [](const auto& test_info) { return test_info.param.name; });

TEST_F(CollectorServer, RequiresTheTokenWhenOneIsConfigured) {
  std::ofstream(dir_ / "token") << "s3cret\n";
  collector_.reset();
  conn_.reset();
  start({"--token-file", dir_ / "token"});
  std::string body = samples_body("a", "h", 1, lines_);
  HttpResponse none = post(body);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer");
  EXPECT_EQ(none.json()["error"], "missing bearer token");
  conn_.reset();
  HttpResponse wrong = post(body, {{"Authorization", "Bearer s3cre7"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.json()["error"], "invalid bearer token");
  conn_.reset();
  // Reads take a token of --read-token-file, which this collector has not.
  HttpResponse read = get("/v1/agents", {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(read.status, 403);
  EXPECT_EQ(read.json()["error"],
            "reads need a token of --read-token-file (or --open-reads, to serve them without "
            "one on this address)");
  conn_.reset();
  EXPECT_EQ(get("/healthz").status, 200) << "health checks need no token";
  HttpResponse right = post(body, {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(right.status, 200) << right.body;
  EXPECT_EQ(collector_->process().stderr_text().find("s3cret"), std::string::npos);
  EXPECT_EQ(right.body.find("s3cret"), std::string::npos);
}

TEST_F(CollectorServer, ReadsBeyondLoopbackNeedAReadTokenOrOpenReads) {
  std::ofstream(dir_ / "reads") << "dashboard r3ad-t0ken-of-the-dashboard\n";
  const std::vector<std::pair<std::vector<std::string>, int>> cases = {
      {{"--listen", "0.0.0.0:0"}, 403},
      {{"--listen", "0.0.0.0:0", "--open-reads"}, 200},
      {{"--listen", "0.0.0.0:0", "--read-token-file", dir_ / "reads"}, 401},
      {{"--listen", "127.0.0.1:0"}, 200},
  };
  for (const auto& [args, status] : cases) {
    SCOPED_TRACE(args.size() > 2 ? args[2] : args[1]);
    collector_.reset();
    conn_.reset();
    start(args);
    EXPECT_EQ(get("/v1/agents").status, status);
    conn_.reset();
    // Ingest without tokens stays open wherever the collector listens.
    EXPECT_EQ(post(samples_body("a", "h", 1, lines_)).status, 200);
    conn_.reset();
  }
  HttpResponse read = get("/v1/agents", {{"Authorization", "Bearer r3ad-t0ken-of-the-dashboard"}});
  EXPECT_EQ(read.status, 200) << "loopback reads are open";
  collector_.reset();
  conn_.reset();
  start({"--listen", "0.0.0.0:0", "--read-token-file", dir_ / "reads"});
  read = get("/v1/agents", {{"Authorization", "Bearer r3ad-t0ken-of-the-dashboard"}});
  EXPECT_EQ(read.status, 200) << read.body;
}

TEST_F(CollectorServer, NoTokenConfiguredMeansNoAuthentication) {
  EXPECT_EQ(post(samples_body("a", "h", 1, lines_), {{"Authorization", "Bearer anything"}}).status,
            200);
}

TEST_F(CollectorServer, CompressedBodyOverTheLimitIs413) {
  std::string big(16u * 1024 * 1024 + 1, ' ');
  HttpResponse r = post(big);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(r.json()["error"], "body: 16777217 bytes, more than the limit of 16777216");
  EXPECT_EQ(r.headers["connection"], "close");
}

TEST_F(CollectorServer, ChunkedBodyOverTheLimitIs413) {
  std::string chunk(1u << 20, ' ');
  char size[16];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  std::string framed = size + chunk + "\r\n";
  HttpConnection c(collector_->port());
  ASSERT_TRUE(
      c.send_raw("POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n"));
  for (int i = 0; i < 17; ++i) {
    if (!c.send_raw(framed)) break;  // the server may stop reading once past the limit
  }
  HttpResponse r = c.read_response();
  EXPECT_EQ(r.status, 413) << r.body;
}

TEST_F(CollectorServer, ZipBombIs413AndMemoryStaysBounded) {
  std::string bomb = gzip_zeros(200u << 20);
  ASSERT_LT(bomb.size(), 300u * 1024);
  HttpResponse r = post(bomb, {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(r.json()["error"], "body: decodes to more than the limit of 134217728 bytes");
  std::uint64_t peak = collector_->peak_rss_kib();
  EXPECT_GT(peak, 0u);
  EXPECT_LT(peak, 100u * 1024) << "VmHWM " << peak << " KiB";
  EXPECT_EQ(post(samples_body("a", "h", 1, lines_)).status, 200);
}

TEST_F(CollectorServer, UnknownContentEncodingIs415) {
  HttpResponse r = post("{}", {{"Content-Encoding", "br"}});
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(r.json()["error"], R"(Content-Encoding: unsupported "br" (accepted: gzip, identity))");
}

TEST_F(CollectorServer, PostWithoutLengthIs411) {
  HttpConnection c(collector_->port());
  ASSERT_TRUE(
      c.send_raw("POST /v1/batches HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: application/json\r\n\r\n"));
  EXPECT_EQ(c.read_response().status, 411);
}

TEST_F(CollectorServer, OtherPathsAndMethodsAre404And405) {
  EXPECT_EQ(get("/v2/batches").status, 404);
  HttpResponse r = get("/v1/batches");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "POST");
  EXPECT_EQ(conn().request("POST", "/v1/agents", "{}").status, 405);
}

TEST_F(CollectorServer, BadQueryParametersAre400NamingTheParameter) {
  HttpResponse r = get("/v1/samples?limit=0");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"], "limit: must be 1 to 100000, got 0");
  r = get("/v1/top?from=yesterday");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"], "from: expected an unsigned integer, got \"yesterday\"");
}

TEST_F(CollectorServer, SlowClientTimesOutWithoutBlockingOthers) {
  collector_.reset();
  start({"--request-timeout-ms", "2000"});
  HttpConnection slow(collector_->port());
  ASSERT_TRUE(
      slow.send_raw("POST /v1/batches HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"));
  auto begin = std::chrono::steady_clock::now();
  HttpResponse r = post(samples_body("a", "h", 1, lines_));
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 1500ms) << "served while the slow one stalls";
  EXPECT_TRUE(slow.closed_by_peer(5s)) << "the stalled request is dropped";
  // On a new connection: the one above idles out at about the same time.
  EXPECT_EQ(HttpConnection(collector_->port()).get("/healthz").status, 200);
}

TEST_F(CollectorServer, IdleKeepAliveConnectionIsClosedAfterTheTimeout) {
  collector_.reset();
  start({"--request-timeout-ms", "500"});
  HttpConnection idle(collector_->port());
  EXPECT_EQ(idle.get("/healthz").status, 200);
  EXPECT_TRUE(idle.closed_by_peer(5s));
}

TEST_F(CollectorServer, ClientResettingMidBodyDoesNotAffectOthers) {
  std::string body = samples_body("a", "h", 1, lines_);
  for (int i = 0; i < 20; ++i) {
    HttpConnection rude(collector_->port());
    ASSERT_TRUE(
        rude.send_raw("POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      "application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 100)));
    rude.reset();
  }
  HttpConnection garbage(collector_->port());
  ASSERT_TRUE(garbage.send_raw("\x16\x03\x01 this is not HTTP\r\n\r\n"));
  EXPECT_EQ(garbage.read_response().status, 400);
  HttpResponse r = post(body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["stored"], 20) << "no piece of the reset requests was stored";
}

TEST_F(CollectorServer, ServesConcurrentConnections) {
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      HttpConnection c(collector_->port());
      for (std::uint64_t seq = 1; seq <= 5; ++seq) {
        auto r = c.post_json(samples_body("agent-" + std::to_string(t), "h", seq, lines_));
        if (r.status == 200 && r.json()["stored"] == 20) ++ok;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_EQ(get("/v1/agents").json()["agents"].size(), 8u);
}

TEST_F(CollectorServer, GapRecordsShowAsDeclaredLostAndSuppressMissing) {
  for (std::uint64_t seq : {1, 2, 5, 9})
    ASSERT_EQ(post(samples_body("a", "h", seq, lines_)).status, 200);
  nlohmann::json a = agent("a");
  EXPECT_EQ(a["last_seq"], 9);
  EXPECT_EQ(a["missing"], nlohmann::json::parse("[[3,4],[6,8]]"));
  HttpResponse g = post(gap_body("a", "h", 10, 6, 8, 3000, "cap"));
  ASSERT_EQ(g.status, 200) << g.body;
  EXPECT_EQ(g.json(), nlohmann::json::parse(R"({"stored":0,"duplicate":false})"));
  EXPECT_EQ(post(gap_body("a", "h", 10, 6, 8, 3000, "cap")).json()["duplicate"], true);
  a = agent("a");
  EXPECT_EQ(a["last_seq"], 10);
  EXPECT_EQ(a["missing"], nlohmann::json::parse("[[3,4]]"));
  ASSERT_EQ(a["declared_lost"].size(), 1u);
  EXPECT_EQ(a["declared_lost"][0]["first_seq"], 6);
  EXPECT_EQ(a["declared_lost"][0]["last_seq"], 8);
  EXPECT_EQ(a["declared_lost"][0]["samples"], 3000);
  EXPECT_EQ(a["declared_lost"][0]["reason"], "cap");
}

TEST_F(CollectorServer, ConflictingSeqIs409) {
  ASSERT_EQ(post(samples_body("a", "h", 1, lines_)).status, 200);
  HttpResponse r = post(gap_body("a", "h", 1, 0, 0, 10, "cap"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.json()["error"], "seq 1 was received as a samples batch");
}

TEST_F(CollectorServer, NamesItDoesNotHoldAre409ListingTheProcesses) {
  HttpResponse r = post(version2(samples_body("a", "h", 1, without_names(lines_))));
  EXPECT_EQ(r.status, 409) << r.body;
  ASSERT_TRUE(r.json().contains("unknown_processes")) << r.body;
  EXPECT_EQ(r.json()["unknown_count"], lines_.size() - 1);  // all but the host line
  EXPECT_EQ(r.json()["unknown_processes"][0]["pid"], 100);
  // Sent in full, then referred to: stored.
  ASSERT_EQ(post(version2(samples_body("a", "h", 1, lines_))).status, 200);
  HttpResponse later =
      post(version2(samples_body("a", "h", 2, without_names(agent_lines("h", 2000, 10)))));
  EXPECT_EQ(later.status, 200) << later.body;
  EXPECT_EQ(later.json()["stored"], 10);
}

TEST_F(CollectorServer, AckedBatchSurvivesSigkill) {
  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_EQ(post(samples_body("a", "web-1", seq, lines_)).status, 200);
  }
  collector_->process().signal(SIGKILL);  // right after the last 200
  EXPECT_EQ(collector_->process().wait(5s), 128 + SIGKILL);
  conn_.reset();
  start();
  EXPECT_EQ(get("/v1/samples?limit=1000").json()["samples"].size(), 60u);
  EXPECT_EQ(agent("a")["samples_stored"], 60);
  EXPECT_EQ(post(samples_body("a", "web-1", 3, lines_)).json()["duplicate"], true);
}

TEST_F(CollectorServer, TopOrdersProcessesBySummedCpu) {
  // Two intervals; in the second, pid 100 burns the most.
  auto first = agent_lines("web-1", 1000, 4);
  auto second = agent_lines("web-1", 2000, 4);
  second[0].replace(second[0].find("\"cpu_ns\":1000"), 13, "\"cpu_ns\":9000");
  ASSERT_EQ(post(samples_body("a", "web-1", 1, first)).status, 200);
  ASSERT_EQ(post(samples_body("a", "web-1", 2, second)).status, 200);
  ASSERT_EQ(post(samples_body("b", "web-2", 1, agent_lines("web-2", 1500, 2))).status, 200);

  auto top = get("/v1/top?host=web-1&n=2").json()["top"];
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0]["pid"], 100);
  EXPECT_EQ(top[0]["cpu_ns"], 10000);
  EXPECT_EQ(top[0]["comm"], "worker-100");
  EXPECT_EQ(top[0]["host"], "web-1");
  EXPECT_EQ(top[1]["pid"], 102);
  EXPECT_EQ(top[1]["cpu_ns"], 6000);

  auto window = get("/v1/top?host=web-1&from=1000&to=2000").json()["top"];
  ASSERT_EQ(window.size(), 3u);
  EXPECT_EQ(window[0]["pid"], 102);
  EXPECT_EQ(window[0]["cpu_ns"], 3000);

  EXPECT_EQ(get("/v1/top").json()["top"].size(), 4u) << "3 processes on web-1, 1 on web-2";
}

TEST_F(CollectorServer, DatabaseFullIs503AndTheAgentCanRetry) {
  collector_.reset();
  conn_.reset();
  start({"--max-db-pages", "600"});
  HttpResponse r;
  std::uint64_t seq = 1;
  for (; seq < 60; ++seq) {
    // New processes in every batch: their names take room (samples hardly do).
    auto big = agent_lines("h", 1, 1000, static_cast<std::uint32_t>(seq * 1000));
    r = post(samples_body("a", "h", seq, big));
    if (r.status != 200) break;
  }
  ASSERT_EQ(r.status, 503) << r.body;
  ASSERT_GT(seq, 1u) << "the first batch should have fit";
  EXPECT_NE(r.json()["error"].get<std::string>().find("database or disk is full"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(r.headers["retry-after"], "5");
  HttpResponse health = get("/healthz");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.json()["status"], "unavailable");
  EXPECT_EQ(agent("a")["samples_stored"], static_cast<int>((seq - 1) * 1000));
}

TEST_F(CollectorServer, SigtermStopsCleanlyWithExitZero) {
  ASSERT_EQ(post(samples_body("a", "h", 1, lines_)).status, 200);
  EXPECT_EQ(collector_->stop(), 0) << collector_->process().stderr_text();
}

TEST_F(CollectorServer, SigtermLetsAnInFlightRequestFinish) {
  std::string body = samples_body("a", "h", 1, agent_lines("h", 1, 1000));
  HttpConnection c(collector_->port());
  ASSERT_TRUE(
      c.send_raw("POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 "application/json\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 1000)));
  // The request must be in flight (accepted, its head read) before SIGTERM:
  // a request sent after it is refused, by design. Nothing tells a client
  // that its head was read, so this one pause stays.
  std::this_thread::sleep_for(200ms);
  collector_->process().signal(SIGTERM);
  // The rest of the body goes once the collector has begun to stop.
  ASSERT_TRUE(collector_->process().wait_for_stderr("stopping", 10s))
      << collector_->process().stderr_text();
  ASSERT_TRUE(c.send_raw(body.substr(1000)));
  HttpResponse r = c.read_response();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_EQ(collector_->process().wait(10s), 0);
}

TEST(CollectorFlags, PrintsHelpWithExamples) {
  RunResult r = run({COLLECTOR_PATH, "--help"}, 10s);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--listen"), std::string::npos);
  EXPECT_NE(r.out.find("--max-connections "), std::string::npos);
  EXPECT_NE(r.out.find("--max-connections-per-address"), std::string::npos);
  EXPECT_NE(r.out.find("Examples"), std::string::npos);
}

struct BadFlag {
  std::vector<std::string> args;
  std::string must_mention;
};

void PrintTo(const BadFlag& b, std::ostream* os) {
  for (const auto& a : b.args) *os << a << ' ';
}

class CollectorBadFlags : public ::testing::TestWithParam<BadFlag> {};

TEST_P(CollectorBadFlags, ExitWithCodeTwoAndOneLineNamingTheFlag) {
  TempDir dir;
  std::vector<std::string> argv{COLLECTOR_PATH};
  for (const auto& a : GetParam().args) argv.push_back(a == "DB" ? dir / "c.db" : a);
  RunResult r = run(argv, 10s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(GetParam().must_mention), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, CollectorBadFlags,
    ::testing::Values(BadFlag{{"--listen", "127.0.0.1:0"}, "--db"},
                      BadFlag{{"--db", "DB", "--listen", "8080"}, "--listen"},
                      BadFlag{{"--db", "DB", "--listen", "localhost:8080"}, "HOST:PORT"},
                      BadFlag{{"--db", "DB", "--listen", "127.0.0.1:70000"}, "--listen"},
                      BadFlag{{"--db", "DB", "--log-level", "loud"}, "{debug,info,warning,error}"},
                      BadFlag{{"--db", "DB", "--durability", "maybe"}, "--durability"},
                      BadFlag{{"--db", "DB", "--token-file", "/nonexistent/token"}, "--token-file"},
                      BadFlag{{"--db", "DB", "--rebind-from", "web-1"}, "requires --token-file"},
                      BadFlag{{"--db", "DB", "--no-such-flag"}, "--no-such-flag"},
                      BadFlag{{"--db", "DB", "--max-connections-per-address", "0"},
                              "--max-connections-per-address"},
                      BadFlag{{"--db", "DB", "--max-connections", "-1"}, "--max-connections"},
                      BadFlag{{"--db", "DB", "--retention-raw", "0"}, "--retention-raw"},
                      BadFlag{{"--db", "DB", "--retention-raw", "30s"}, "not in range 60"},
                      BadFlag{{"--db", "DB", "--retention-raw", "14x"}, "unit not recognized"},
                      BadFlag{{"--db", "DB", "--retention-rollup", "200y"}, "--retention-rollup"}));

TEST(CollectorStartup, UnusableDatabasePathIsOneLineAndExitOne) {
  RunResult r =
      run({COLLECTOR_PATH, "--listen", "127.0.0.1:0", "--db", "/nonexistent/dir/c.db"}, 10s);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent/dir/c.db"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tally::test
