// tally-collector as a real process under load and abuse of its storage
// side: many large bodies at once, queries that take long, health checks
// meanwhile, sums at the protocol's bounds, and who may see what.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "collector/sample_chunk.h"
#include "collector_test_support.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kMaxCpu = 9223372036854775807ULL;

// A bare HTTP/1.1 client that can stop after the response head, for
// `Expect: 100-continue` and for telling whether a response has arrived yet.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{60, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool send(std::string_view bytes) {
    while (fd_ >= 0 && !bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return fd_ >= 0;
  }
  // True when response bytes are waiting to be read.
  bool has_data() {
    char c;
    return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }
  // The next response: status, headers (names lower-cased) and body. Status
  // 0: none came.
  HttpResponse read() {
    HttpResponse r = read_head();
    if (r.status != 0) read_body(r);
    return r;
  }
  // The status and headers only: an interim 100 Continue has no body.
  HttpResponse read_head() {
    HttpResponse r;
    std::size_t end;
    while ((end = buffered_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return r;
    }
    std::string head = buffered_.substr(0, end);
    buffered_.erase(0, end + 4);
    if (head.size() < 12) return r;
    r.status = std::stoi(head.substr(9, 3));
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos + 2 < head.size()) {
      std::size_t e = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, e == std::string::npos ? e : e - pos - 2);
      std::size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      }
      pos = e;
    }
    return r;
  }
  void read_body(HttpResponse& r) {
    const std::size_t length =
        r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
    while (buffered_.size() < length) {
      if (!fill()) {
        r = HttpResponse{};
        return;
      }
    }
    r.body = buffered_.substr(0, length);
    buffered_.erase(0, length);
  }

 private:
  bool fill() {
    char buf[65536];
    ssize_t n;
    do {
      n = ::recv(fd_, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return false;
    buffered_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffered_;
};

std::string process_line(std::uint32_t pid, std::uint64_t ts_ns, std::uint64_t cpu_ns,
                         const std::string& host = "web-1") {
  auto line = nlohmann::ordered_json::parse(agent_lines(host, ts_ns, 1, pid, false)[0]);
  line["cpu_ns"] = cpu_ns;
  return line.dump();
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class CollectorLoad : public ::testing::Test {
 protected:
  void start(std::vector<std::string> extra = {}) {
    collector_.reset();
    collector_ = std::make_unique<CollectorProcess>(db_, std::move(extra));
    ASSERT_TRUE(collector_->started()) << collector_->process().stderr_text();
  }
  HttpResponse get(const std::string& target, const Headers& headers = {}) {
    HttpConnection c(collector_->port(), 120s);
    return c.request("GET", target, {}, headers);
  }

  TempDir dir_;
  std::string db_ = dir_ / "collector.db";
  std::unique_ptr<CollectorProcess> collector_;
};

// F8: 200 clients posting 8 MB each took the collector to 3.6 GB.
TEST_F(CollectorLoad, ManyLargeBodiesAtOnceKeepMemoryBoundedAndEachIsStoredOnce) {
  start({"--durability", "normal"});
  constexpr int kClients = 100;
  constexpr std::size_t kSamples = 2000;
  // One agent's batches of 2,000 processes with 4 KiB command lines: 8.6 MB
  // each, every body sharing the samples text so the clients cost little.
  auto lines = agent_lines("web-1", 1'700'000'000'000'000'000, kSamples);
  for (auto& l : lines) {
    auto j = nlohmann::ordered_json::parse(l);
    if (j["kind"] == "process") j["cmdline"] = std::string(4096, 'c');
    l = j.dump();
  }
  std::string samples;
  for (const auto& l : lines) samples += (samples.empty() ? "" : ",") + l;
  lines.clear();
  const std::string suffix = "]}";

  std::atomic<int> stored{0}, refused{0}, refused_without_retry_after{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const std::string prefix = R"({"version":1,"agent_id":"a","host":"web-1","seq":)" +
                                 std::to_string(c + 1) +
                                 R"(,"kind":"samples","first_index":0,"batch_samples":)" +
                                 std::to_string(kSamples) + R"(,"samples":[)";
      const std::size_t length = prefix.size() + samples.size() + suffix.size();
      // Half the clients ask before sending the body, as curl does for
      // large ones (RFC 9110 section 10.1.1).
      const bool expect = c % 2 == 0;
      std::mt19937 random(static_cast<unsigned>(c));
      const auto deadline = std::chrono::steady_clock::now() + 240s;
      while (std::chrono::steady_clock::now() < deadline) {
        RawClient client(collector_->port());
        std::string head =
            "POST /v1/batches HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: " +
            std::to_string(length) + "\r\n";
        if (expect) head += "Expect: 100-continue\r\n";
        head += "\r\n";
        HttpResponse r;
        bool send_body = client.send(head);
        if (send_body && expect) {
          r = client.read_head();
          send_body = r.status == 100;
          if (r.status != 100 && r.status != 0) client.read_body(r);  // refused before the body
        }
        if (send_body) {
          // A refusal may come (and the connection close) before all of the
          // body is sent.
          (void)(client.send(prefix) && client.send(samples) && client.send(suffix));
          r = client.read();
        }
        if (r.status == 200) {
          if (r.json()["stored"] == kSamples) {
            ++stored;
          } else {
            ++other;
          }
          return;
        }
        unsigned wait_s = 0;
        if (r.status == 503) {
          ++refused;
          if (r.headers.count("retry-after") == 0) {
            ++refused_without_retry_after;
          } else {
            wait_s = static_cast<unsigned>(std::stoul(r.headers["retry-after"]));
          }
        } else if (r.status != 0) {
          ++other;
          return;
        }
        // As the agent does: what Retry-After says, spread a little.
        std::this_thread::sleep_for(std::chrono::seconds(wait_s) +
                                    std::chrono::milliseconds(random() % 500));
      }
    });
  }
  for (auto& t : clients) t.join();

  const std::uint64_t peak_kib = collector_->peak_rss_kib();
  std::printf("%d bodies of %.1f MB: %d refused with 503 first; collector peak RSS %llu MiB\n",
              kClients, static_cast<double>(samples.size()) / 1e6, refused.load(),
              static_cast<unsigned long long>(peak_kib >> 10));
  EXPECT_EQ(stored.load(), kClients);
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(refused.load(), 0) << "100 bodies of 8 MB at once are more than the budget";
  EXPECT_EQ(refused_without_retry_after.load(), 0);
  EXPECT_LT(peak_kib, 512u * 1024) << "VmHWM " << peak_kib << " KiB";

  // Everything acknowledged is stored, once.
  auto agents = get("/v1/agents").json()["agents"];
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0]["samples_stored"], kClients * kSamples);
  EXPECT_EQ(agents[0]["last_seq"], kClients);
  EXPECT_EQ(agents[0]["missing"], nlohmann::json::array());
  EXPECT_EQ(agents[0]["partial"], nlohmann::json::array());
  EXPECT_EQ(agents[0]["duplicates_rejected"], 0);
}

// Builds a database big enough that grouping it takes the query thread a
// good while: the collector makes the schema, the rows go in with SQL, one
// process per sample, a chunk of 1,000 samples per batch.
void fill_with_processes(const std::string& db, int rows) {
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  const std::string sql =
      "BEGIN;"
      "INSERT INTO agents (agent, agent_id, host) VALUES (1, 'a', 'web-1');"
      "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < " +
      std::to_string(rows - 1) +
      ") INSERT INTO names (names_id, agent, pid, start_time_ns, digest, names)"
      " SELECT x + 1, 1, x, x, 0, '\"comm\":\"w\",\"cmdline\":\"w\",\"cgroup\":\"/\"' FROM n;";
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(handle,
                         "INSERT INTO chunks (agent, seq, first_idx, samples, host,"
                         " min_ts_ns, max_ts_ns, data) VALUES (1, ?1, 0, ?2, 'web-1', ?3, ?4, ?5)",
                         -1, &insert, nullptr),
      SQLITE_OK);
  for (int first = 0; first < rows; first += 1000) {
    std::vector<collector::ChunkSample> chunk;
    for (int x = first; x < std::min(rows, first + 1000); ++x) {
      collector::ChunkSample s;
      s.ts_ns = static_cast<std::uint64_t>(x);
      s.interval_ns = 60'000'000'000;
      s.names_id = x + 1;
      s.cpu_ns = static_cast<std::uint64_t>(x);
      chunk.push_back(s);
    }
    const std::string data = collector::encode_chunk(chunk);
    sqlite3_bind_int64(insert, 1, first / 1000 + 1);
    sqlite3_bind_int64(insert, 2, static_cast<std::int64_t>(chunk.size()));
    sqlite3_bind_int64(insert, 3, first);
    sqlite3_bind_int64(insert, 4, first + static_cast<int>(chunk.size()) - 1);
    sqlite3_bind_blob(insert, 5, data.data(), static_cast<int>(data.size()), SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(insert), SQLITE_DONE) << sqlite3_errmsg(handle);
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  ASSERT_EQ(sqlite3_exec(handle,
                         "INSERT INTO store_meta (key, value) VALUES ('max_chunk_span_ns', 999);"
                         "COMMIT;",
                         nullptr, nullptr, &error),
            SQLITE_OK)
      << (error != nullptr ? error : "");
  sqlite3_close(handle);
}

// F8: a /v1/top over everything took 46 s, and /healthz waited behind it.
TEST_F(CollectorLoad, HealthAnswersWhileALongQueryRuns) {
  start();
  collector_->stop();
  fill_with_processes(db_, 1'000'000);
  start();
  RawClient query(collector_->port());
  ASSERT_TRUE(query.send("GET /v1/top?n=10 HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpResponse health = get("/healthz");
  const bool query_answered_first = query.has_data();
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_FALSE(query_answered_first) << "/healthz waited for the query";
  HttpResponse answer = query.read();
  EXPECT_TRUE(answer.status == 200 || answer.status == 503) << answer.status << answer.body;
}

TEST_F(CollectorLoad, QueriesBeyondTheWaitingBoundAre503AtOnce) {
  start();
  collector_->stop();
  fill_with_processes(db_, 1'000'000);
  // Each query is cut at 300 ms: 100 of them would queue for 30 s.
  start({"--query-timeout-ms", "300"});
  std::atomic<int> waiting_refused{0}, answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 100; ++c) {
    clients.emplace_back([&] {
      HttpResponse r = get("/v1/top?n=10");
      if (r.status == 503 && r.body.find("queries are waiting") != std::string::npos) {
        if (r.headers.count("retry-after") != 0) ++waiting_refused;
      } else if (r.status == 200 || r.status == 503) {
        ++answered;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_GE(waiting_refused.load(), 100 - 64 - 1 - 8) << "at most 64 wait, one runs";
  EXPECT_LE(answered.load(), 64 + 1 + 8) << "(8: queries that finished while others came)";
  EXPECT_EQ(waiting_refused.load() + answered.load(), 100);
  EXPECT_EQ(get("/healthz").status, 200);
}

TEST_F(CollectorLoad, AQueryPastTheTimeLimitIs503AndSaysWhy) {
  start();
  collector_->stop();
  fill_with_processes(db_, 300'000);
  start({"--query-timeout-ms", "20"});
  HttpResponse r = get("/v1/top?n=10");
  EXPECT_EQ(r.status, 503) << r.body;
  const std::string error = r.json().is_object() ? r.json().value("error", "") : "";
  EXPECT_NE(error.find("query time limit of 20 ms (--query-timeout-ms)"), std::string::npos)
      << error;
  EXPECT_EQ(get("/healthz").status, 200);
  EXPECT_EQ(get("/v1/top?n=10&from=0&to=1000").status, 200) << "a small window is quick";
}

// F9: two samples at the protocol's bound broke /v1/top for good.
TEST_F(CollectorLoad, TopOverSamplesAtTheBoundAnswersEvenAfterARestart) {
  start();
  HttpConnection c(collector_->port());
  ASSERT_EQ(
      c.post_json(samples_body("a", "web-1", 1,
                               {process_line(100, 1000, kMaxCpu), process_line(101, 1000, 3)}))
          .status,
      200);
  ASSERT_EQ(
      c.post_json(samples_body("a", "web-1", 2,
                               {process_line(100, 2000, kMaxCpu), process_line(101, 2000, 4)}))
          .status,
      200);
  ASSERT_EQ(c.post_json(samples_body("b", "web-2", 1,
                                     {process_line(7, 1500, kMaxCpu, "web-2"),
                                      process_line(7, 2500, kMaxCpu, "web-2")}))
                .status,
            200);
  for (int run = 0; run < 2; ++run) {
    for (const std::string& target :
         {std::string("/v1/top"), std::string("/v1/top?host=web-1"),
          std::string("/v1/top?from=1000&to=3000"), std::string("/v1/top?host=web-2&n=1")}) {
      HttpResponse r = get(target);
      ASSERT_EQ(r.status, 200) << target << ": " << r.body;
      EXPECT_EQ(r.json()["top"][0]["cpu_ns"], kMaxCpu) << target;
    }
    auto top = get("/v1/top?host=web-1").json()["top"];
    ASSERT_EQ(top.size(), 2u);
    EXPECT_EQ(top[1]["cpu_ns"], 7);
    collector_->stop();
    start();
  }
}

// F16: without a token, /healthz gave out the database path and an agent id.
TEST_F(CollectorLoad, HealthShowsWhatFailedOnlyToTokenHolders) {
  std::ofstream(dir_ / "token") << "s3cret\n";
  start({"--token-file", dir_ / "token", "--max-db-pages", "600"});
  EXPECT_EQ(get("/healthz").body, R"({"status":"ok"})");
  const Headers token{{"Authorization", "Bearer s3cret"}};
  const auto detailed_ok = nlohmann::json::parse(get("/healthz", token).body);
  EXPECT_EQ(detailed_ok["status"], "ok");
  EXPECT_TRUE(detailed_ok.contains("housekeeping")) << "token holders see the housekeeping counts";

  // Fill the page budget: the writes fail, and health says so.
  HttpConnection c(collector_->port());
  HttpResponse r;
  for (std::uint64_t seq = 1; seq < 60 && r.status != 503; ++seq) {
    // New processes in every batch: their names take room (samples hardly do).
    auto big = agent_lines("h", 1, 1000, static_cast<std::uint32_t>(seq * 1000));
    r = c.post_json(samples_body("agent-secret-id", "h", seq, big), token);
  }
  ASSERT_EQ(r.status, 503) << r.body;

  for (const Headers& without : {Headers{}, Headers{{"Authorization", "Bearer wrong"}}}) {
    HttpResponse anonymous = get("/healthz", without);
    EXPECT_EQ(anonymous.status, 503);
    EXPECT_EQ(anonymous.body, R"({"status":"unavailable"})");
    EXPECT_EQ(anonymous.headers["retry-after"], "5");
  }
  HttpResponse detailed = get("/healthz", token);
  EXPECT_EQ(detailed.status, 503);
  EXPECT_EQ(detailed.json()["status"], "unavailable");
  const std::string error = detailed.json()["error"];
  EXPECT_NE(error.find("database or disk is full"), std::string::npos) << error;
  EXPECT_NE(error.find("agent-secret-id"), std::string::npos) << error;
}

TEST_F(CollectorLoad, HealthWithoutATokenConfiguredShowsTheDetails) {
  start({"--max-db-pages", "600"});
  HttpConnection c(collector_->port());
  HttpResponse r;
  for (std::uint64_t seq = 1; seq < 60 && r.status != 503; ++seq) {
    // New processes in every batch: their names take room (samples hardly do).
    auto big = agent_lines("h", 1, 1000, static_cast<std::uint32_t>(seq * 1000));
    r = c.post_json(samples_body("a", "h", seq, big));
  }
  ASSERT_EQ(r.status, 503);
  HttpResponse health = get("/healthz");
  EXPECT_EQ(health.status, 503);
  EXPECT_TRUE(health.json().contains("error")) << "every endpoint is open: " << health.body;
}

TEST_F(CollectorLoad, TheDatabaseItsWalAndTheirDirectoryAreTheCollectorsOnly) {
  db_ = dir_ / "state/collector.db";
  start();
  HttpConnection c(collector_->port());
  ASSERT_EQ(c.post_json(samples_body("a", "h", 1, agent_lines("h", 1, 5))).status, 200);
  EXPECT_EQ(mode_of(dir_ / "state"), 0700u);
  EXPECT_EQ(mode_of(db_), 0600u);
  EXPECT_EQ(mode_of(db_ + "-wal"), 0600u);
  EXPECT_EQ(mode_of(db_ + "-shm"), 0600u);
}

TEST(CollectorLoadFlags, HelpNamesTheLimits) {
  RunResult r = run({COLLECTOR_PATH, "--help"}, 10s);
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--query-timeout-ms", "--ingest-max-requests", "--ingest-max-mib"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace tally::test
