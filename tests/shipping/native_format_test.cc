#include "shipping/native_format.h"

#include <gtest/gtest.h>
#include <zlib.h>
#include <nlohmann/json.hpp>

#include "sample_lines.h"
#include "samples/json_line.h"
#include "shipping/gzip.h"

namespace tally::shipping {
namespace {

queue::Batch data_batch(std::uint64_t seq, const std::string& payload, std::uint32_t n) {
  queue::Batch b;
  b.seq = seq;
  b.kind = queue::Batch::Kind::samples;
  b.payload = payload;
  b.sample_count = n;
  return b;
}

// A host sample's line, told apart by its time.
std::string host_at(std::uint64_t ts_ns) {
  samples::HostSample h;
  h.ts_ns = ts_ns;
  h.interval_ns = 2;
  h.host = "h";
  h.ncpu = 2;
  return samples::to_json_line(h);
}

TEST(NativeFormat, WrapsTheCommittedLinesUnchangedInTheEnvelope) {
  NativeFormat f("agent-1", "web \"1\"");
  auto batch = data_batch(7, host_at(1) + "\n" + host_at(2) + "\n" + host_at(3), 3);
  auto lines = test::samples_of(batch.payload);
  auto body = f.encode(batch, lines, 0, 3);
  ASSERT_TRUE(body.ok());
  auto j = nlohmann::json::parse(*body);
  EXPECT_EQ(j["version"], 3);
  EXPECT_EQ(j["agent_id"], "agent-1");
  EXPECT_EQ(j["host"], "web \"1\"");
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["kind"], "samples");
  EXPECT_EQ(j["first_index"], 0);
  EXPECT_EQ(j["batch_samples"], 3);
  ASSERT_EQ(j["samples"].size(), 3u);
  EXPECT_EQ(j["samples"][2]["ts_ns"], 3);
  EXPECT_NE(body->find("[" + host_at(1) + "," + host_at(2) + "," + host_at(3) + "]"),
            std::string::npos);
}

TEST(NativeFormat, APieceKeepsTheBatchIdentityAndItsFirstIndex) {
  NativeFormat f("agent-1", "h");
  auto batch =
      data_batch(9, host_at(0) + "\n" + host_at(1) + "\n" + host_at(2) + "\n" + host_at(3), 4);
  auto lines = test::samples_of(batch.payload);
  auto j = nlohmann::json::parse(*f.encode(batch, lines, 2, 2));
  EXPECT_EQ(j["seq"], 9);
  EXPECT_EQ(j["first_index"], 2);
  EXPECT_EQ(j["batch_samples"], 4);
  ASSERT_EQ(j["samples"].size(), 2u);
  EXPECT_EQ(j["samples"][0]["ts_ns"], 2);
  EXPECT_FALSE(f.encode(batch, lines, 3, 2).ok());
}

TEST(NativeFormat, EncodesAGapRecord) {
  NativeFormat f("agent-1", "h");
  queue::Batch b;
  b.seq = 12;
  b.kind = queue::Batch::Kind::gap;
  queue::GapRecord g;
  g.first_seq = 3;
  g.last_seq = 5;
  g.samples = 3000;
  g.reason = queue::GapReason::cap;
  g.time_ns = 99;
  b.gap = g;
  auto j = nlohmann::json::parse(*f.encode(b, {}, 0, 0));
  EXPECT_EQ(j["kind"], "gap");
  EXPECT_EQ(j["seq"], 12);
  EXPECT_EQ(j["gap"]["first_seq"], 3);
  EXPECT_EQ(j["gap"]["last_seq"], 5);
  EXPECT_EQ(j["gap"]["samples"], 3000);
  EXPECT_EQ(j["gap"]["reason"], "cap");
  EXPECT_FALSE(j["gap"].contains("predecessor"));
}

TEST(NativeFormat, AnOutboxLostGapNamesThePredecessorAgentAndItsLastSeq) {
  NativeFormat f("agent-2", "h");
  queue::Batch b;
  b.seq = 1;
  b.kind = queue::Batch::Kind::gap;
  queue::GapRecord g;
  g.samples = 40;
  g.reason = queue::GapReason::outbox_lost;
  g.time_ns = 99;
  g.predecessor = queue::GapPredecessor{"agent-1", 57};
  b.gap = g;
  auto j = nlohmann::json::parse(*f.encode(b, {}, 0, 0));
  EXPECT_EQ(j["agent_id"], "agent-2");
  EXPECT_EQ(j["gap"]["reason"], "outbox_lost");
  EXPECT_EQ(j["gap"]["first_seq"], 0);
  EXPECT_EQ(j["gap"]["last_seq"], 0);
  EXPECT_EQ(j["gap"]["samples"], 40);
  EXPECT_EQ(j["gap"]["predecessor"], (nlohmann::json{{"agent_id", "agent-1"}, {"last_seq", 57}}));
}

TEST(NativeFormat, EncodingIsDeterministicUntilSomethingIsAcknowledged) {
  NativeFormat f("agent-1", "h");
  auto batch = data_batch(1, host_at(1) + "\n" + host_at(2), 2);
  auto lines = test::samples_of(batch.payload);
  auto a = gzip_compress(*f.encode(batch, lines, 0, 2), 6);
  auto b = gzip_compress(*f.encode(batch, lines, 0, 2), 6);
  EXPECT_EQ(*a, *b);
}

std::string process_line(std::uint32_t pid, std::uint64_t start, const std::string& cmdline,
                         std::uint64_t cpu_ns, bool exited = false) {
  return nlohmann::ordered_json{{"kind", "process"}, {"ts_ns", 1},         {"interval_ns", 2},
                                {"host", "h"},       {"pid", pid},         {"start_time_ns", start},
                                {"comm", "sh"},      {"cmdline", cmdline}, {"cgroup", "/a"},
                                {"cpu_ns", cpu_ns},  {"cpu_pct", 0.25},    {"wait_ns", 0},
                                {"wait_pct", 0.0},   {"rss_bytes", 4096},  {"exited", exited}}
      .dump();
}

const std::string kHostLine = host_at(1);

// Encodes lines as one batch and returns its samples, parsed.
nlohmann::json samples_sent(const NativeFormat& f, const std::vector<std::string>& lines) {
  std::string payload;
  for (const auto& l : lines) payload += (payload.empty() ? "" : "\n") + l;
  auto batch = data_batch(1, payload, static_cast<std::uint32_t>(lines.size()));
  auto samples = test::samples_of(batch.payload);
  auto body = f.encode(batch, samples, 0, static_cast<std::uint32_t>(samples.size()));
  EXPECT_TRUE(body.ok());
  return nlohmann::json::parse(*body)["samples"];
}

void acknowledge(NativeFormat& f, const std::vector<std::string>& lines) {
  std::string payload;
  for (const auto& l : lines) payload += (payload.empty() ? "" : "\n") + l;
  const auto samples = test::samples_of(payload);
  f.acknowledged(samples, 0, static_cast<std::uint32_t>(samples.size()));
}

nlohmann::json without_names(const std::string& line) {
  auto j = nlohmann::json::parse(line);
  j.erase("comm");
  j.erase("cmdline");
  j.erase("cgroup");
  return j;
}

TEST(NativeFormat, LeavesOutOnlyNamesTheCollectorAcknowledgedForThatProcess) {
  NativeFormat f("agent-1", "h");
  // A command line with the characters a naive scan would trip on.
  const std::string tricky = R"(sh -c "echo "a,b":{c}" \)";
  std::vector<std::string> first = {process_line(7, 900, tricky, 5), kHostLine};
  auto sent = samples_sent(f, first);
  EXPECT_EQ(sent[0], nlohmann::json::parse(first[0])) << "nothing acknowledged yet";
  acknowledge(f, first);
  EXPECT_EQ(f.names_held(), 1u);

  std::vector<std::string> next = {process_line(7, 900, tricky, 6),  // same process, same names
                                   process_line(7, 901, tricky, 6),  // pid reused: another process
                                   process_line(8, 900, "sh -c other", 6),  // never acknowledged
                                   kHostLine};
  sent = samples_sent(f, next);
  EXPECT_EQ(sent[0], without_names(next[0])) << "every other member kept as it was";
  EXPECT_EQ(sent[1], nlohmann::json::parse(next[1]));
  EXPECT_EQ(sent[2], nlohmann::json::parse(next[2]));
  EXPECT_EQ(sent[3], nlohmann::json::parse(kHostLine));

  // After an exec the names differ: sent in full until acknowledged.
  std::vector<std::string> exec = {process_line(7, 900, "python3 job.py", 7)};
  EXPECT_EQ(samples_sent(f, exec)[0], nlohmann::json::parse(exec[0]));
  acknowledge(f, exec);
  EXPECT_EQ(samples_sent(f, exec)[0], without_names(exec[0]));
}

TEST(NativeFormat, AnAcknowledgedExitAndAForgetSendNamesAgain) {
  NativeFormat f("agent-1", "h");
  std::vector<std::string> alive = {process_line(7, 900, "a", 1), process_line(8, 900, "b", 1)};
  acknowledge(f, alive);
  ASSERT_EQ(f.names_held(), 2u);
  // The collector forgets a process's names when it stores its exit.
  acknowledge(f, {process_line(7, 900, "a", 1, true)});
  EXPECT_EQ(f.names_held(), 1u);
  EXPECT_EQ(samples_sent(f, alive)[0], nlohmann::json::parse(alive[0]));
  EXPECT_EQ(samples_sent(f, alive)[1], without_names(alive[1]));

  HttpResponse unknown;
  unknown.status = 409;
  unknown.body = R"({"error":"...","unknown_processes":[{"pid":8,"start_time_ns":900}]})";
  ASSERT_EQ(f.judge(unknown).outcome, Outcome::resend_in_full);
  f.adapt_to(unknown);
  EXPECT_EQ(f.names_held(), 0u);
  EXPECT_EQ(f.version(), 3);
  EXPECT_EQ(samples_sent(f, alive)[1], nlohmann::json::parse(alive[1]));
}

TEST(NativeFormat, RemembersAtMostItsLimitOfProcesses) {
  NativeFormat f("agent-1", "h");
  std::vector<std::string> lines;
  for (std::uint32_t pid = 1; pid <= NativeFormat::kMaxNamesHeld + 10; ++pid) {
    lines.push_back(process_line(pid, 1, "x", 1));
  }
  acknowledge(f, lines);
  EXPECT_GT(f.names_held(), 0u);
  EXPECT_LE(f.names_held(), NativeFormat::kMaxNamesHeld);
}

TEST(NativeFormat, Judges409UnknownProcessesAsResendInFullAndOther409sAsRejections) {
  NativeFormat f("a", "h");
  HttpResponse unknown;
  unknown.status = 409;
  unknown.body = R"({"error":"...","unknown_processes":[{"pid":7,"start_time_ns":9}]})";
  EXPECT_EQ(f.judge(unknown).outcome, Outcome::resend_in_full);
  HttpResponse conflict;
  conflict.status = 409;
  conflict.body = R"({"error":"seq 1 was received as a gap record"})";
  EXPECT_EQ(f.judge(conflict).outcome, Outcome::reject);
}

TEST(NativeFormat, FallsBackToVersion1ForACollectorThatSpeaksOnlyVersion1) {
  NativeFormat f("agent-1", "h");
  std::vector<std::string> alive = {process_line(7, 900, "a", 1)};
  acknowledge(f, alive);
  // What a collector of the first release answers: straight to version 1,
  // since the shipper resends a piece in full only once.
  HttpResponse old_collector;
  old_collector.status = 400;
  old_collector.body = R"j({"error":"version: unsupported version 3 (this collector speaks 1)"})j";
  ASSERT_EQ(f.judge(old_collector).outcome, Outcome::resend_in_full);
  EXPECT_NE(f.adapt_to(old_collector).find("version 1"), std::string::npos);
  EXPECT_EQ(f.version(), 1);

  auto batch = data_batch(3, alive[0], 1);
  auto lines = test::samples_of(batch.payload);
  auto j = nlohmann::json::parse(*f.encode(batch, lines, 0, 1));
  EXPECT_EQ(j["version"], 1);
  acknowledge(f, alive);
  EXPECT_EQ(samples_sent(f, alive)[0], nlohmann::json::parse(alive[0]))
      << "version 1 always carries the names";
  // Refused again in version 1: a real rejection now, not a loop.
  old_collector.body = R"j({"error":"version: unsupported version 1 (this collector speaks 2)"})j";
  EXPECT_EQ(f.judge(old_collector).outcome, Outcome::reject);
}

std::string cgroup_line(const std::string& path) {
  samples::CgroupSample c;
  c.ts_ns = 1;
  c.interval_ns = 2;
  c.host = "h";
  c.cgroup = path;
  c.processes = 1;
  c.process_cpu_ns = 5;
  return samples::to_json_line(c);
}

TEST(NativeFormat, Version3CarriesCgroupLinesAndVersion2LeavesThemOutAndCountsThem) {
  NativeFormat f("agent-1", "h");
  // A batch of process, cgroup, cgroup, host, process, cgroup, host.
  const std::vector<std::string> all = {
      process_line(7, 900, "a", 1), cgroup_line("/a"), cgroup_line("/b"), host_at(1),
      process_line(8, 900, "b", 1), cgroup_line("/a"), host_at(2)};
  std::string payload;
  for (const auto& l : all) payload += (payload.empty() ? "" : "\n") + l;
  const auto batch = data_batch(4, payload, 7);
  const auto samples = test::samples_of(payload);
  auto v3 = nlohmann::json::parse(*f.encode(batch, samples, 2, 4));
  EXPECT_EQ(v3["version"], 3);
  EXPECT_EQ(v3["first_index"], 2);
  EXPECT_EQ(v3["batch_samples"], 7);
  ASSERT_EQ(v3["samples"].size(), 4u);
  EXPECT_EQ(v3["samples"][0]["kind"], "cgroup");

  // What a collector of the previous release answers.
  HttpResponse previous;
  previous.status = 400;
  previous.body = R"j({"error":"version: unsupported version 3 (this collector speaks 1 to 2)"})j";
  ASSERT_EQ(f.judge(previous).outcome, Outcome::resend_in_full);
  EXPECT_NE(f.adapt_to(previous).find("cgroup lines"), std::string::npos);
  EXPECT_EQ(f.version(), 2);
  // Indexes and counts are of the samples sent: 4 of the 7 are not cgroup
  // lines, and samples 2..5 hold two of them (host 1, process 8).
  auto v2 = nlohmann::json::parse(*f.encode(batch, samples, 2, 4));
  EXPECT_EQ(v2["version"], 2);
  EXPECT_EQ(v2["first_index"], 1);
  EXPECT_EQ(v2["batch_samples"], 4);
  ASSERT_EQ(v2["samples"].size(), 2u);
  EXPECT_EQ(v2["samples"][0]["kind"], "host");
  EXPECT_EQ(v2["samples"][1]["pid"], 8);
  // A piece of cgroup lines only is an empty piece, at the index after.
  auto empty = nlohmann::json::parse(*f.encode(batch, samples, 1, 2));
  EXPECT_EQ(empty["first_index"], 1);
  EXPECT_TRUE(empty["samples"].empty());
  EXPECT_EQ(f.samples_withheld(), 0u) << "counted once acknowledged";
  f.acknowledged(samples, 0, 7);
  EXPECT_EQ(f.samples_withheld(), 3u);
  EXPECT_TRUE(f.withholding());

  // About an hour later it tries version 3 again: an old collector refuses
  // that body and gets it in version 2; an upgraded one takes it.
  for (std::uint64_t i = 1; i < NativeFormat::kProbeAfterAcks; ++i) f.acknowledged(samples, 0, 7);
  EXPECT_EQ(f.version(), 3) << "probing";
  ASSERT_EQ(f.judge(previous).outcome, Outcome::resend_in_full);
  f.adapt_to(previous);
  EXPECT_EQ(f.version(), 2);
  // Never between two pieces of one batch: they must agree on its form.
  for (std::uint64_t i = 0; i < NativeFormat::kProbeAfterAcks; ++i) f.acknowledged(samples, 0, 3);
  EXPECT_EQ(f.version(), 2) << "not after a batch's first piece";
  f.acknowledged(samples, 3, 4);
  EXPECT_EQ(f.version(), 3) << "after its last";
  HttpResponse upgraded;
  upgraded.status = 200;
  ASSERT_EQ(f.judge(upgraded).outcome, Outcome::ack);
  f.acknowledged(samples, 0, 7);
  EXPECT_EQ(f.version(), 3) << "the upgraded collector keeps version 3";
  EXPECT_FALSE(f.withholding());
  EXPECT_EQ(nlohmann::json::parse(*f.encode(batch, samples, 0, 7))["samples"].size(), 7u);
}

TEST(Gzip, RoundTripsThroughZlib) {
  std::string text(100000, 'x');
  for (std::size_t i = 0; i < text.size(); i += 7) text[i] = static_cast<char>('a' + i % 26);
  auto gz = gzip_compress(text, 6);
  ASSERT_TRUE(gz.ok());
  EXPECT_LT(gz->size(), text.size() / 4);
  std::string out(text.size(), '\0');
  z_stream zs{};
  inflateInit2(&zs, 15 + 16);
  zs.next_in = reinterpret_cast<Bytef*>(gz->data());
  zs.avail_in = static_cast<uInt>(gz->size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  inflateEnd(&zs);
  EXPECT_EQ(out, text);
}

TEST(SinkFormatClassify, MapsStatusCodesToWhatTheShipperDoes) {
  NativeFormat f("a", "h");
  EXPECT_EQ(f.classify(200), Outcome::ack);
  EXPECT_EQ(f.classify(204), Outcome::ack);
  EXPECT_EQ(f.classify(408), Outcome::retry);
  EXPECT_EQ(f.classify(429), Outcome::retry);
  EXPECT_EQ(f.classify(500), Outcome::retry);
  EXPECT_EQ(f.classify(503), Outcome::retry);
  EXPECT_EQ(f.classify(413), Outcome::split);
  EXPECT_EQ(f.classify(400), Outcome::reject);
  EXPECT_EQ(f.classify(401), Outcome::retry);
  EXPECT_EQ(f.classify(403), Outcome::retry);
  EXPECT_EQ(f.classify(404), Outcome::reject);
  EXPECT_EQ(f.classify(301), Outcome::retry);
}

}  // namespace
}  // namespace tally::shipping
