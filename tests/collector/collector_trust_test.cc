// Who may write as which agent, with real tally-collector processes and
// real token files: per-agent credentials, the attacks they stop, token
// rotation by SIGHUP, bad token files, an older database's agents, and
// successors declaring their predecessor's data lost.
#include <signal.h>
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "collector_test_support.h"
#include "old_database.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kTokenA = "token-of-agent-a-6f1d0c2b9a8e7f65";
constexpr const char* kTokenB = "token-of-agent-b-1a2b3c4d5e6f7a8b";
constexpr const char* kTokenB2 = "token-of-agent-b-rotated-99aa88bb";
// Reads take a token of their own (--read-token-file), not an agent's.
constexpr const char* kReadToken = "token-of-a-dashboard-5c4b3a2918170";

Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// `lines` with every comm replaced by EVIL: what an attacker would like
// the victim's processes to be called.
std::vector<std::string> relabelled(std::vector<std::string> lines, const std::string& host) {
  for (auto& line : lines) {
    auto j = nlohmann::ordered_json::parse(line);
    j["host"] = host;
    if (j["kind"] == "process") j["comm"] = "EVIL";
    line = j.dump();
  }
  return lines;
}

class CollectorTrust : public ::testing::Test {
 protected:
  void SetUp() override {
    write_tokens(std::string("# one credential per agent\n") + "agent-a " + kTokenA + "\n" +
                 "agent-b " + kTokenB + "\n");
    std::ofstream(reads_) << "dashboard " << kReadToken << "\n";
    start();
  }

  void write_tokens(const std::string& text) { std::ofstream(tokens_) << text; }

  void start(bool with_tokens = true) {
    conn_.reset();
    collector_.reset();
    std::vector<std::string> extra;
    if (with_tokens) extra = {"--token-file", tokens_, "--read-token-file", reads_};
    collector_ = std::make_unique<CollectorProcess>(db_, extra);
    ASSERT_TRUE(collector_->started()) << collector_->process().stderr_text();
  }

  // SIGHUP, then waits for the log line that says the file was read. Sent
  // again every 3 s: once, under ThreadSanitizer in a CI rehearsal, a
  // SIGHUP sent just after start-up never showed (30 runs since did);
  // what these tests check is what a reload does, not that one signal
  // arrives.
  void reload(const std::string& expect_in_log) {
    bool seen = false;
    for (int attempt = 0; attempt < 4 && !seen; ++attempt) {
      collector_->process().signal(SIGHUP);
      seen = collector_->process().wait_for_stderr(expect_in_log, 3s).has_value();
    }
    ASSERT_TRUE(seen) << collector_->process().stderr_text();
  }

  HttpConnection& conn() {
    if (!conn_ || !conn_->connected()) conn_ = std::make_unique<HttpConnection>(collector_->port());
    return *conn_;
  }
  HttpResponse post(const std::string& token, const std::string& body) {
    HttpResponse r = conn().post_json(body, bearer(token));
    if (r.status != 200) conn_.reset();  // the server may close after an error
    return r;
  }
  HttpResponse get(const std::string& token, const std::string& target) {
    return conn().request("GET", target, {}, bearer(token));
  }
  json agent(const std::string& id) {
    HttpResponse r = get(reader_, "/v1/agents");
    EXPECT_EQ(r.status, 200) << r.body;
    json agents = r.json()["agents"];
    for (const auto& a : agents) {
      if (a["agent_id"] == id) return a;
    }
    return nullptr;
  }
  json samples_of(const std::string& host) {
    return get(reader_, "/v1/samples?limit=1000&host=" + host).json()["samples"];
  }

  // B's data as B sent it: every sample, its host, its counters.
  void expect_b_intact(std::size_t batches) {
    json samples = samples_of("web-b");
    ASSERT_EQ(samples.size(), batches * lines_b_.size());
    for (std::size_t i = 0; i < lines_b_.size(); ++i) {
      EXPECT_EQ(samples[i], json::parse(lines_b_[i])) << i;
    }
    EXPECT_EQ(samples_of("evil").size(), 0u);
    json b = agent("b");
    EXPECT_EQ(b["host"], "web-b");
    EXPECT_EQ(b["credential"], "agent-b");
    EXPECT_EQ(b["samples_stored"], batches * lines_b_.size());
    EXPECT_EQ(b["duplicates_rejected"], 0);
    EXPECT_EQ(b["declared_lost"], json::array());
    EXPECT_EQ(b["missing"], json::array());
  }

  void expect_forbidden(const HttpResponse& r, const std::string& credential = "agent-a") {
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(r.json()["error"], "agent_id \"b\" is bound to another credential than \"" +
                                     credential +
                                     "\", the one this request's token belongs to: an agent "
                                     "keeps the credential it first wrote with");
  }

  TempDir dir_;
  std::string db_ = dir_ / "collector.db";
  std::string tokens_ = dir_ / "tokens";
  std::unique_ptr<CollectorProcess> collector_;
  std::unique_ptr<HttpConnection> conn_;
  std::string reads_ = dir_ / "read-tokens";
  std::string reader_ = kReadToken;  // for queries
  std::vector<std::string> lines_b_ = agent_lines("web-b", 1'700'000'000'000'000'000, 5);
};

TEST_F(CollectorTrust, ATokenCannotTakeAnotherAgentsNextSeqFirst) {
  ASSERT_EQ(post(kTokenB, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  auto evil = relabelled(lines_b_, "evil");
  // B's next seq, whole or as a piece, and a copy of a seq B already sent.
  expect_forbidden(post(kTokenA, samples_body("b", "evil", 2, evil)));
  expect_forbidden(post(kTokenA, samples_body("b", "evil", 2, evil, 1, 2)));
  expect_forbidden(post(kTokenA, samples_body("b", "evil", 1, evil)));

  HttpResponse real = post(kTokenB, samples_body("b", "web-b", 2, lines_b_));
  ASSERT_EQ(real.status, 200) << real.body;
  EXPECT_EQ(real.json(), json::parse(R"({"stored":5,"duplicate":false})"));
  expect_b_intact(2);
}

TEST_F(CollectorTrust, ATokenCannotPutAGapRecordAtAnotherAgentsSeq) {
  ASSERT_EQ(post(kTokenB, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  expect_forbidden(post(kTokenA, gap_body("b", "evil", 2, 0, 0, 1, "cap")));
  expect_forbidden(post(kTokenA, gap_body("b", "evil", 3, 1, 2, 100, "cap")));
  HttpResponse real = post(kTokenB, samples_body("b", "web-b", 2, lines_b_));
  ASSERT_EQ(real.status, 200) << real.body;
  EXPECT_EQ(real.json()["stored"], 5);
  expect_b_intact(2);
}

TEST_F(CollectorTrust, ATokenCannotRelabelAnotherAgentsProcesses) {
  ASSERT_EQ(post(kTokenB, version2(samples_body("b", "web-b", 1, lines_b_))).status, 200);
  auto evil = relabelled(lines_b_, "web-b");
  // New names for B's processes: in a new seq, and in a copy of seq 1
  // (whose names a collector records even though it is a duplicate).
  expect_forbidden(post(kTokenA, version2(samples_body("b", "web-b", 2, evil))));
  expect_forbidden(post(kTokenA, version2(samples_body("b", "web-b", 1, evil))));

  // B's next batch refers to its processes' names without sending them.
  auto later = agent_lines("web-b", 1'700'000'060'000'000'000, 5);
  HttpResponse real = post(kTokenB, version2(samples_body("b", "web-b", 2, without_names(later))));
  ASSERT_EQ(real.status, 200) << real.body;
  EXPECT_EQ(real.json()["stored"], 5);
  json samples = samples_of("web-b");
  ASSERT_EQ(samples.size(), 10u);
  for (const auto& s : samples) {
    if (s["kind"] == "process") {
      EXPECT_EQ(s["comm"].get<std::string>().rfind("worker-", 0), 0u) << s;
    }
  }
  json top = get(reader_, "/v1/top?host=web-b").json()["top"];
  ASSERT_FALSE(top.empty());
  for (const auto& t : top) EXPECT_NE(t["comm"], "EVIL") << t;
}

TEST_F(CollectorTrust, ATokenCannotWriteAsAnotherAgentsHost) {
  ASSERT_EQ(post(kTokenB, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  // A new agent id of A's credential claiming to be host web-b, in its
  // envelope or only in the samples (which /v1/samples and /v1/top filter on).
  auto evil = relabelled(lines_b_, "web-b");
  auto evil_a = relabelled(lines_b_, "web-a");
  std::vector<std::string> mixed = evil_a;
  mixed[0] = evil[0];
  for (const std::string& body :
       {samples_body("fake", "web-b", 1, evil), samples_body("fake", "web-a", 1, mixed),
        gap_body("fake", "web-b", 1, 0, 0, 1, "cap")}) {
    HttpResponse r = post(kTokenA, body);
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(r.json()["error"],
              "host \"web-b\" is bound to another credential than \"agent-a\", the one this "
              "request's token belongs to: a host name keeps the credential that first wrote it");
  }
  EXPECT_EQ(agent("fake"), nullptr);
  json top = get(reader_, "/v1/top?host=web-b").json()["top"];
  for (const auto& t : top) EXPECT_NE(t["comm"], "EVIL") << t;
  expect_b_intact(1);
}

TEST_F(CollectorTrust, EveryEndpointButHealthNeedsAValidTokenAndQueriesTakeAReadToken) {
  ASSERT_EQ(post(kTokenB, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  for (const char* target : {"/v1/agents", "/v1/samples", "/v1/top"}) {
    EXPECT_EQ(get(kReadToken, target).status, 200) << target;
    // An agent's token writes; it does not read the fleet.
    for (const char* agent_token : {kTokenA, kTokenB}) {
      HttpResponse r = get(agent_token, target);
      EXPECT_EQ(r.status, 401) << target;
      EXPECT_EQ(r.json()["error"], "invalid bearer token (reads take a read token)");
      conn_.reset();
    }
    HttpResponse wrong = get("token-of-nobody-0000000000000000", target);
    EXPECT_EQ(wrong.status, 401) << target;
    conn_.reset();
    HttpResponse none = conn().get(target);
    EXPECT_EQ(none.status, 401) << target;
    conn_.reset();
  }
  HttpResponse unknown =
      post("token-of-nobody-0000000000000000", samples_body("c", "h", 1, lines_b_));
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(post(kReadToken, samples_body("c", "h", 1, lines_b_)).status, 401)
      << "a read token does not write";
  EXPECT_EQ(conn().get("/healthz").status, 200);
  // The tokens never appear in a response or in the log.
  EXPECT_EQ(get(kReadToken, "/v1/agents").body.find("token-of"), std::string::npos);
  EXPECT_EQ(collector_->process().stderr_text().find("token-of"), std::string::npos);
}

TEST_F(CollectorTrust, TheSingleTokenOfEarlierCollectorsStillWorksForEveryAgent) {
  write_tokens(std::string(kTokenA) + "\n");
  start();
  // Every agent shares the one credential: each can write as any other.
  ASSERT_EQ(post(kTokenA, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  ASSERT_EQ(post(kTokenA, samples_body("c", "web-c", 1, lines_b_)).status, 200);
  EXPECT_EQ(post(kTokenA, samples_body("b", "web-c", 2, lines_b_)).status, 200);
  EXPECT_EQ(agent("b")["credential"], agent("c")["credential"]);
  EXPECT_EQ(agent("b")["credential"].get<std::string>().rfind("sha256:", 0), 0u)
      << "a bare token is named by its fingerprint";
}

TEST_F(CollectorTrust, RotatingATokenBySighupKeepsTheAgentWriting) {
  ASSERT_EQ(post(kTokenB, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  // Step 1: B's credential gets a second token; both work.
  write_tokens(std::string("agent-a ") + kTokenA + "\nagent-b " + kTokenB + "\nagent-b " +
               kTokenB2 + "\n");
  reload("2 credentials, 3 tokens");
  EXPECT_EQ(post(kTokenB2, samples_body("b", "web-b", 2, lines_b_)).status, 200);
  EXPECT_EQ(post(kTokenB, samples_body("b", "web-b", 3, lines_b_)).status, 200);
  // Step 2: the old token goes.
  write_tokens(std::string("agent-a ") + kTokenA + "\nagent-b " + kTokenB2 + "\n");
  reload("2 credentials, 2 tokens");
  EXPECT_EQ(post(kTokenB, samples_body("b", "web-b", 4, lines_b_)).status, 401);
  HttpResponse after = post(kTokenB2, samples_body("b", "web-b", 4, lines_b_));
  EXPECT_EQ(after.status, 200) << after.body;
  expect_b_intact(4);
  expect_forbidden(post(kTokenA, samples_body("b", "evil", 5, lines_b_)));
  EXPECT_EQ(collector_->process().stderr_text().find("token-of"), std::string::npos);
}

TEST_F(CollectorTrust, ABareTokenIsRotatedUnderItsFingerprint) {
  write_tokens(std::string(kTokenB) + "\n");
  start();
  ASSERT_EQ(post(kTokenB, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  std::string fingerprint = agent("b")["credential"];
  write_tokens(fingerprint + " " + kTokenB2 + "\n");
  reload("1 credentials, 1 tokens");
  HttpResponse r = post(kTokenB2, samples_body("b", "web-b", 2, lines_b_));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(agent("b")["credential"], fingerprint);
}

TEST_F(CollectorTrust, ABadTokenFileOnSighupKeepsTheTokensInUse) {
  write_tokens(std::string("agent-a ") + kTokenA + "\nagent-b " + kTokenB + " oops\n");
  reload("keeping the tokens loaded before");
  std::string log = collector_->process().stderr_text();
  EXPECT_NE(log.find(tokens_ + ":2: expected TOKEN or NAME TOKEN, found 3 fields"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("token-of"), std::string::npos) << log;
  EXPECT_EQ(post(kTokenB, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  EXPECT_EQ(collector_->process().wait(100ms), std::nullopt) << "still running";
}

TEST_F(CollectorTrust, SighupWithoutATokenFileIsHarmless) {
  start(false);
  reload("nothing to reload");
  EXPECT_EQ(conn().get("/healthz").status, 200);
}

struct BadTokens {
  std::string name;
  std::string text;
  std::string error;  // after "PATH"
};

void PrintTo(const BadTokens& b, std::ostream* os) { *os << b.name; }

class CollectorBadTokenFile : public ::testing::TestWithParam<BadTokens> {};

TEST_P(CollectorBadTokenFile, IsRefusedAtStartWithFileAndLine) {
  TempDir dir;
  std::ofstream(dir / "tokens") << GetParam().text;
  RunResult r = run({COLLECTOR_PATH, "--listen", "127.0.0.1:0", "--db", dir / "c.db",
                     "--token-file", dir / "tokens"},
                    10s);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(dir / "tokens" + GetParam().error), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("s3cr3t"), std::string::npos) << "never the token: " << r.err;
  EXPECT_EQ(r.out.find("listening on"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Table, CollectorBadTokenFile,
    ::testing::Values(
        BadTokens{"ThreeFields", "# fleet\nweb-1 s3cr3t-aaaaaaaaaaaaaaa extra\n",
                  ":2: expected TOKEN or NAME TOKEN, found 3 fields"},
        BadTokens{"BadName", "web/1 s3cr3t-aaaaaaaaaaaaaaa\n",
                  ":1: the name has a character other than letters, digits and . _ : @ - "
                  "(column 4)"},
        BadTokens{"ControlByte", "a a-token-aaaaaaaaaaaa\nweb-1 s3cr3t\x7f-aaaaaaaaa\n",
                  ":2: a byte that is not printable ASCII (0x7f) at column 13"},
        BadTokens{"SameTokenTwice", "a s3cr3t-aaaaaaaaaaaaaaa\n\nb s3cr3t-aaaaaaaaaaaaaaa\n",
                  ":3: the same token as line 1 (each token must be unique)"},
        BadTokens{"NoToken", "# s3cr3t\n\n", " holds no token"}),
    [](const auto& test_info) { return test_info.param.name; });

TEST_F(CollectorTrust, AnOlderDatabasesAgentsAreBoundOnTheirNextRequest) {
  // An agent known from before this collector bound agents: a database of
  // schema version 3, as a collector of that version wrote it, in place of
  // the one SetUp() started with.
  conn_.reset();
  collector_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db_ + suffix);
  test::write_old_database(db_, 3, "b", "web-b", lines_b_);

  start();
  EXPECT_EQ(agent("b")["credential"], nullptr);
  HttpResponse next = post(kTokenB, samples_body("b", "web-b", 2, lines_b_));
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(agent("b")["credential"], "agent-b");
  expect_forbidden(post(kTokenA, samples_body("b", "evil", 3, relabelled(lines_b_, "evil"))));
  expect_b_intact(2);
}

TEST_F(CollectorTrust, AFleetLeavesItsSharedTokenWithRebindFrom) {
  constexpr const char* kShared = "token-shared-by-the-fleet-0123456789";
  write_tokens(std::string(kShared) + "\n");
  start();
  ASSERT_EQ(post(kShared, samples_body("b", "web-b", 1, lines_b_)).status, 200);
  auto lines_c = agent_lines("web-c", 1'700'000'000'000'000'000, 5);
  ASSERT_EQ(post(kShared, samples_body("c", "web-c", 1, lines_c)).status, 200);
  std::string shared = agent("b")["credential"];

  // Each agent gets a token of its own; the shared one stays until all moved.
  write_tokens(std::string(kShared) + "\nagent-b " + kTokenB + "\n");
  conn_.reset();
  collector_.reset();
  collector_ = std::make_unique<CollectorProcess>(
      db_, std::vector<std::string>{"--token-file", tokens_, "--read-token-file", reads_,
                                    "--rebind-from", shared});
  ASSERT_TRUE(collector_->started()) << collector_->process().stderr_text();
  HttpResponse moved = post(kTokenB, samples_body("b", "web-b", 2, lines_b_));
  EXPECT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(agent("b")["credential"], "agent-b");
  expect_forbidden(post(kShared, samples_body("b", "web-b", 3, lines_b_)), shared);
  EXPECT_EQ(post(kShared, samples_body("c", "web-c", 2, lines_c)).status, 200) << "not moved yet";
  expect_b_intact(2);
}

TEST_F(CollectorTrust, ASuccessorNamesItsPredecessorWhichShowsTheLoss) {
  for (std::uint64_t seq : {1, 2, 3}) {
    ASSERT_EQ(post(kTokenB, samples_body("old-b", "web-b", seq, lines_b_)).status, 200);
  }
  // B's outbox was lost with seqs 4 to 6 in it; B now writes as new-b.
  HttpResponse r = post(kTokenB, successor_gap_body("new-b", "web-b", 1, "old-b", 6, 15));
  ASSERT_EQ(r.status, 200) << r.body;
  json next = agent("new-b");
  EXPECT_EQ(next["predecessor"], json::parse(R"({"agent_id":"old-b","seq":1,"last_seq":6})"));
  EXPECT_EQ(next["successor"], nullptr);
  ASSERT_EQ(next["declared_lost"].size(), 1u);
  EXPECT_EQ(next["declared_lost"][0]["samples"], 15);
  EXPECT_EQ(next["declared_lost"][0]["predecessor"],
            json::parse(R"({"agent_id":"old-b","last_seq":6})"));

  json old = agent("old-b");
  EXPECT_EQ(old["successor"], json::parse(R"({"agent_id":"new-b","seq":1,"last_seq":6})"));
  EXPECT_EQ(old["missing"], json::array());
  ASSERT_EQ(old["declared_lost"].size(), 1u) << old;
  json lost = old["declared_lost"][0];
  EXPECT_EQ(lost["first_seq"], 4);
  EXPECT_EQ(lost["last_seq"], 6);
  EXPECT_EQ(lost["reason"], "outbox_lost");
  EXPECT_EQ(lost["declared_by"], "new-b");
  EXPECT_EQ(lost["seq"], 1);
}

TEST_F(CollectorTrust, OnlyTheSameCredentialMayDeclareAnAgentsDataLost) {
  for (std::uint64_t seq : {1, 2}) {
    ASSERT_EQ(post(kTokenB, samples_body("b", "web-b", seq, lines_b_)).status, 200);
  }
  HttpResponse r = post(kTokenA, successor_gap_body("new-a", "web-a", 1, "b", 50, 0));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.json()["error"],
            "gap.predecessor.agent_id: agent \"b\" is bound to another credential than "
            "\"agent-a\", this request's; only an agent of its own credential may declare its "
            "data lost");
  EXPECT_EQ(agent("new-a"), nullptr) << "nothing stored";
  EXPECT_EQ(agent("b")["successor"], nullptr);
  expect_b_intact(2);
  // B continues to write, and may name its own successor later.
  EXPECT_EQ(post(kTokenB, successor_gap_body("new-b", "web-b", 1, "b", 3, 0)).status, 200);
  EXPECT_EQ(agent("b")["successor"]["agent_id"], "new-b");
}

TEST_F(CollectorTrust, ABadPredecessorIs400NamingTheField) {
  auto j = json::parse(successor_gap_body("new-b", "web-b", 1, "old-b", 6, 0));
  j["gap"]["predecessor"]["last_seq"] = "6";
  HttpResponse r = post(kTokenB, j.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"], "gap.predecessor.last_seq: expected unsigned integer, got string");
  j["gap"]["predecessor"] = {{"agent_id", 7}, {"last_seq", 6}};
  r = post(kTokenB, j.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"], "gap.predecessor.agent_id: expected string, got unsigned integer");
}

}  // namespace
}  // namespace tally::test
