// The decoding path as a pure function: encodings, limits, JSON, schema.
#include "collector/request_decoder.h"

#include <gtest/gtest.h>

#include "collector/json_text.h"
#include "collector_test_support.h"
#include "samples/json_line.h"
#include "samples/sample.h"

namespace tally::collector {
namespace {

using test::agent_lines;
using test::samples_body;

Decoded decode(std::string_view body, std::string_view encoding = "",
               DecodeLimits limits = DecodeLimits{}) {
  return decode_batch_request("application/json", encoding, body, limits);
}

BatchRequest accepted(Decoded d) {
  if (const auto* r = std::get_if<Rejection>(&d)) {
    ADD_FAILURE() << "rejected " << r->status << ": " << r->message;
    return {};
  }
  return std::get<BatchRequest>(std::move(d));
}

// The sample as received: its JSON with the names put back.
std::string received(const StoredSample& s) { return with_names(s.json, s.names_at, s.names); }

Rejection rejected(const Decoded& d) {
  if (const auto* r = std::get_if<Rejection>(&d)) return *r;
  ADD_FAILURE() << "accepted";
  return Rejection{0, ""};
}

TEST(RequestDecoder, AcceptsTheAgentsOwnLinesAndKeepsThemVerbatim) {
  auto lines = agent_lines("web-1", 1'700'000'000'000'000'000, 4);
  BatchRequest r = accepted(decode(samples_body("agent-1", "web-1", 7, lines)));
  EXPECT_EQ(r.agent_id, "agent-1");
  EXPECT_EQ(r.host, "web-1");
  EXPECT_EQ(r.seq, 7u);
  const auto& piece = std::get<SamplesPiece>(r.body);
  EXPECT_EQ(piece.batch_samples, 4u);
  ASSERT_EQ(piece.samples.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(received(piece.samples[i]), lines[i]);
    EXPECT_EQ(piece.samples[i].index, i);
  }
  EXPECT_EQ(piece.samples[0].pid, 100u);
  EXPECT_EQ(piece.samples[0].cpu_ns, 1000u);
  EXPECT_FALSE(piece.samples[3].pid.has_value()) << "the host line has no pid";
}

TEST(RequestDecoder, GzipAndIdentityDecodeToTheSameRequest) {
  auto body = samples_body("a", "h", 1, agent_lines("h", 5, 3));
  auto plain = std::get<SamplesPiece>(accepted(decode(body, "identity")).body);
  auto zipped = std::get<SamplesPiece>(accepted(decode(test::gzip(body), "gzip")).body);
  ASSERT_EQ(plain.samples.size(), zipped.samples.size());
  for (std::size_t i = 0; i < plain.samples.size(); ++i) {
    EXPECT_EQ(plain.samples[i].json, zipped.samples[i].json);
  }
  EXPECT_TRUE(std::holds_alternative<BatchRequest>(decode(test::gzip(body), " GZip ")));
  EXPECT_TRUE(std::holds_alternative<BatchRequest>(decode(test::gzip(body), "x-gzip")));
}

TEST(RequestDecoder, AcceptsConcatenatedGzipMembers) {
  auto body = samples_body("a", "h", 1, agent_lines("h", 5, 3));
  std::string two = test::gzip(body.substr(0, 50)) + test::gzip(body.substr(50));
  EXPECT_TRUE(std::holds_alternative<BatchRequest>(decode(two, "gzip")));
}

TEST(RequestDecoder, PieceIndexesStartAtFirstIndex) {
  auto lines = agent_lines("h", 5, 10);
  auto piece =
      std::get<SamplesPiece>(accepted(decode(samples_body("a", "h", 3, lines, 4, 3))).body);
  ASSERT_EQ(piece.samples.size(), 3u);
  EXPECT_EQ(piece.first_index, 4u);
  EXPECT_EQ(piece.samples[0].index, 4u);
  EXPECT_EQ(piece.samples[2].index, 6u);
  EXPECT_EQ(received(piece.samples[2]), lines[6]);
}

TEST(RequestDecoder, ToleratesUnknownFieldsEverywhereAndKeepsThemInSamples) {
  std::string body = R"({"version":1,"future":{"x":[1,{"y":null}]},"agent_id":"a","host":"h",)"
                     R"("seq":1,"kind":"samples","first_index":0,"batch_samples":1,"samples":[)"
                     R"({"kind":"host","ts_ns":1,"interval_ns":2,"host":"h","ncpu":1,"busy_ns":1,)"
                     R"("cpu_pct":1.50,"processes":0,"dropped_updates":0,"gpu":{"util":[1,2]}}]})";
  auto piece = std::get<SamplesPiece>(accepted(decode(body)).body);
  ASSERT_EQ(piece.samples.size(), 1u);
  EXPECT_EQ(piece.samples[0].json,
            R"({"kind":"host","ts_ns":1,"interval_ns":2,"host":"h","ncpu":1,"busy_ns":1,)"
            R"("cpu_pct":1.50,"processes":0,"dropped_updates":0,"gpu":{"util":[1,2]}})");
}

TEST(RequestDecoder, ReEscapesStringsSoTheStoredSampleIsValidJson) {
  samples::ProcessSample s;
  s.host = "h";
  s.cmdline = std::string("sh -c \"echo\thi\"\n\x01\\ \xc3\xa9", 21);
  std::vector<std::string> lines{samples::to_json_line(s)};
  auto piece = std::get<SamplesPiece>(accepted(decode(samples_body("a", "h", 1, lines))).body);
  ASSERT_EQ(piece.samples.size(), 1u);
  EXPECT_EQ(received(piece.samples[0]), lines[0]);
  EXPECT_EQ(nlohmann::json::parse(received(piece.samples[0]))["cmdline"], s.cmdline);
}

TEST(RequestDecoder, TakesTheNamesOutOfTheSampleWhereverTheyStand) {
  // The store keeps a process's names apart from its samples; what it puts
  // back must be the object as received, the names where they were.
  const std::string rest =
      R"("kind":"process","ts_ns":1,"interval_ns":2,"host":"h","pid":3,"start_time_ns":4,)"
      R"("cpu_ns":5,"cpu_pct":0.5,"rss_bytes":6,"exited":false)";
  const std::string names = R"("comm":"sh","cmdline":"sh -c \"x\"","cgroup":"/a")";
  const std::vector<std::string> samples = {
      "{" + names + "," + rest + "}", "{" + rest + "," + names + "}",
      std::string(R"({"kind":"process","comm":"sh","cmdline":"sh -c \"x\"","cgroup":"/a",)") +
          R"("ts_ns":1,"interval_ns":2,"host":"h","pid":3,"start_time_ns":4,"cpu_ns":5,)"
          R"("cpu_pct":0.5,"rss_bytes":6,"exited":false,"extra":{"comm":"not a name"}})"};
  for (const std::string& sample : samples) {
    const std::string body = R"({"version":1,"agent_id":"a","host":"h","seq":1,"kind":"samples",)"
                             R"("first_index":0,"batch_samples":1,"samples":[)" +
                             sample + "]}";
    auto piece = std::get<SamplesPiece>(accepted(decode(body)).body);
    ASSERT_EQ(piece.samples.size(), 1u);
    const StoredSample& s = piece.samples[0];
    EXPECT_EQ(s.names, names);
    EXPECT_EQ(s.json.find(R"("cmdline")"), std::string::npos) << s.json;
    EXPECT_EQ(received(s), sample);
  }

  // Names apart from each other come back together, where the first stood.
  const std::string apart =
      R"({"comm":"sh","kind":"process","cmdline":"x","ts_ns":1,"interval_ns":2,"host":"h",)"
      R"("pid":3,"start_time_ns":4,"cpu_ns":5,"cpu_pct":0.5,"rss_bytes":6,"exited":false,)"
      R"("cgroup":"/"})";
  const std::string body = R"({"version":1,"agent_id":"a","host":"h","seq":1,"kind":"samples",)"
                           R"("first_index":0,"batch_samples":1,"samples":[)" +
                           apart + "]}";
  auto piece = std::get<SamplesPiece>(accepted(decode(body)).body);
  ASSERT_EQ(piece.samples.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(received(piece.samples[0])), nlohmann::json::parse(apart));
  EXPECT_EQ(received(piece.samples[0]).rfind(R"({"comm":"sh","cmdline":"x","cgroup":"/",)", 0), 0u)
      << received(piece.samples[0]);
}

TEST(RequestDecoder, DecodesGapRecords) {
  BatchRequest r = accepted(decode(test::gap_body("a", "h", 43, 10, 12, 3000, "cap")));
  const auto& gap = std::get<GapRecord>(r.body);
  EXPECT_EQ(gap.first_seq, 10u);
  EXPECT_EQ(gap.last_seq, 12u);
  EXPECT_EQ(gap.samples, 3000u);
  EXPECT_EQ(gap.reason, "cap");
  EXPECT_EQ(gap.detail, "test");
}

TEST(RequestDecoder, DecodesAGapRecordNamingItsPredecessor) {
  BatchRequest r =
      accepted(decode(test::successor_gap_body("new", "h", 1, "old", 9223372036854775807u, 12)));
  const auto& gap = std::get<GapRecord>(r.body);
  ASSERT_TRUE(gap.predecessor.has_value());
  EXPECT_EQ(*gap.predecessor, (Predecessor{"old", 9223372036854775807u}));
  EXPECT_EQ(gap.reason, "outbox_lost");
  EXPECT_EQ(gap.samples, 12u);
  EXPECT_FALSE(
      std::get<GapRecord>(accepted(decode(test::gap_body("a", "h", 2, 1, 1, 1, "cap"))).body)
          .predecessor.has_value())
      << "optional";
}

TEST(RequestDecoder, IgnoresUnknownFieldsOfThePredecessor) {
  auto j = nlohmann::json::parse(test::successor_gap_body("new", "h", 1, "old", 7, 0));
  j["gap"]["predecessor"]["host"] = "web-1";
  j["gap"]["predecessor"]["later"] = {{"nested", {1, 2}}};
  BatchRequest r = accepted(decode(j.dump()));
  EXPECT_EQ(std::get<GapRecord>(r.body).predecessor, (Predecessor{"old", 7}));
}

struct BadBody {
  std::string name;
  std::string body;
  std::string error;  // the whole expected message
};

void PrintTo(const BadBody& b, std::ostream* os) { *os << b.name; }

std::string valid_prefix() {
  return R"({"version":1,"agent_id":"a","host":"h","seq":1,"kind":"samples","first_index":0,)";
}

std::string process_sample(const std::string& replace_from, const std::string& replace_to) {
  std::string s = R"({"kind":"process","ts_ns":1,"interval_ns":2,"host":"h","pid":3,)"
                  R"("start_time_ns":4,"comm":"c","cmdline":"x","cgroup":"/","cpu_ns":5,)"
                  R"("cpu_pct":0.5,"rss_bytes":6,"exited":false})";
  if (!replace_from.empty()) s.replace(s.find(replace_from), replace_from.size(), replace_to);
  return s;
}

std::string with_samples(const std::vector<std::string>& samples) {
  std::string body =
      valid_prefix() + "\"batch_samples\":" + std::to_string(samples.size()) + ",\"samples\":[";
  for (std::size_t i = 0; i < samples.size(); ++i) body += (i ? "," : "") + samples[i];
  return body + "]}";
}

// A cgroup line (protocol version 3) with one edit, and a body of
// `version` holding samples.
std::string cgroup_sample(const std::string& replace_from, const std::string& replace_to) {
  std::string s = R"({"kind":"cgroup","ts_ns":1,"interval_ns":2,"host":"h","cgroup":"/a",)"
                  R"("processes":1,"process_cpu_ns":5,"cpu_ns":6,"cpu_pct":0.5,"nr_periods":7,)"
                  R"("nr_throttled":1,"throttled_ns":8,"limit_cpus":0.5})";
  if (!replace_from.empty()) s.replace(s.find(replace_from), replace_from.size(), replace_to);
  return s;
}

std::string in_version(int version, std::string body) {
  body.replace(body.find(R"("version":1)"), 11, R"("version":)" + std::to_string(version));
  return body;
}

// A successor's gap record whose predecessor member is `predecessor`.
std::string with_predecessor(const std::string& predecessor) {
  return R"({"version":1,"agent_id":"a","host":"h","seq":1,"kind":"gap","gap":)"
         R"({"first_seq":0,"last_seq":0,"samples":0,"reason":"outbox_lost","time_ns":1,)"
         R"("predecessor":)" +
         predecessor + "}}";
}

class RequestDecoderRejects : public ::testing::TestWithParam<BadBody> {};

TEST_P(RequestDecoderRejects, With400NamingTheFieldAndTheProblem) {
  Rejection r = rejected(decode(GetParam().body));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.message, GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RequestDecoderRejects,
    ::testing::Values(
        BadBody{"MalformedJson", "{\"version\":1,",
                "invalid JSON: "
                "parse error at line 1, column 14: syntax error while parsing object key - "
                "unexpected end of input; expected string literal"},
        BadBody{"Empty", "",
                "invalid JSON: parse error at line 1, column 1: syntax error while "
                "parsing value - unexpected end of input; expected '[', '{', or a literal"},
        BadBody{"TrailingGarbage", with_samples({process_sample("", "")}) + "x",
                "invalid JSON: parse error at line 1, column 285: syntax error while parsing "
                "value - invalid literal; last read: '\"exited\":false}]}x'; expected end of "
                "input"},
        BadBody{"NotAnObject", "[1,2]", "body: expected a JSON object, got array"},
        BadBody{"MissingVersion", R"({"agent_id":"a"})", "version: missing"},
        BadBody{"VersionMismatch", with_samples({}).replace(11, 1, "4"),
                "version: unsupported version 4 (this collector speaks 1 to 3)"},
        BadBody{"VersionMismatchWinsOverSampleErrors",
                R"({"samples":[{"kind":"disk"}],"version":4})",
                "version: unsupported version 4 (this collector speaks 1 to 3)"},
        BadBody{"VersionWrongType", R"({"version":"1"})",
                "version: expected unsigned integer, got string"},
        BadBody{"MissingAgentId", R"({"version":1,"host":"h"})", "agent_id: missing"},
        BadBody{"EmptyAgentId", R"({"version":1,"agent_id":"","host":"h","seq":1,"kind":"gap"})",
                "agent_id: must not be empty"},
        BadBody{"SeqZero", R"({"version":1,"agent_id":"a","host":"h","seq":0,"kind":"gap"})",
                "seq: must be at least 1"},
        BadBody{"SeqNegative", R"({"version":1,"agent_id":"a","host":"h","seq":-1,"kind":"gap"})",
                "seq: expected unsigned integer, got negative integer"},
        BadBody{"SeqTooLarge",
                R"({"version":1,"agent_id":"a","host":"h","seq":9223372036854775808})",
                "seq: 9223372036854775808 is out of range (at most 9223372036854775807)"},
        BadBody{"UnknownBodyKind", R"({"version":1,"agent_id":"a","host":"h","seq":1,"kind":"x"})",
                R"(kind: unknown kind "x" (expected "samples" or "gap"))"},
        BadBody{"MissingSamples", valid_prefix() + R"("batch_samples":1})", "samples: missing"},
        BadBody{"SamplesNotArray", valid_prefix() + R"("batch_samples":1,"samples":{}})",
                "samples: expected array, got object"},
        BadBody{"PieceBeyondBatch",
                valid_prefix() + R"("batch_samples":0,"samples":[)" + process_sample("", "") + "]}",
                "samples: piece holds indexes 0 to 0 but batch_samples is 0"},
        BadBody{"SampleNotObject", with_samples({"42"}),
                "samples[0]: expected object, got "
                "unsigned integer"},
        BadBody{"SampleMissingField", with_samples({process_sample(",\"cpu_ns\":5", "")}),
                "samples[0].cpu_ns: missing"},
        BadBody{"SampleMissingOneName", with_samples({process_sample(",\"comm\":\"c\"", "")}),
                "samples[0].comm: missing (a process sample gives comm, cmdline and cgroup, or "
                "none of them to refer to the names sent before)"},
        BadBody{"NamesLeftOutInVersion1",
                with_samples({process_sample(R"(,"comm":"c","cmdline":"x","cgroup":"/")", "")}),
                "samples[0].comm: missing (leaving out a process's names needs protocol version "
                "2)"},
        BadBody{
            "SampleWrongType",
            with_samples({process_sample("", ""), process_sample("", ""), process_sample("", ""),
                          process_sample("\"cpu_ns\":5", "\"cpu_ns\":\"5\"")}),
            "samples[3].cpu_ns: expected unsigned integer, got string"},
        BadBody{
            "SampleFraction", with_samples({process_sample("\"pid\":3", "\"pid\":3.5")}),
            "samples[0].pid: expected unsigned integer, got number with a fraction or exponent"},
        BadBody{"SamplePidTooLarge",
                with_samples({process_sample("\"pid\":3", "\"pid\":4294967296")}),
                "samples[0].pid: 4294967296 is out of range (at most 4294967295)"},
        BadBody{"SampleBoolAsNumber", with_samples({process_sample("false", "0")}),
                "samples[0].exited: expected boolean, got unsigned integer"},
        BadBody{"SampleNull", with_samples({process_sample("\"comm\":\"c\"", "\"comm\":null")}),
                "samples[0].comm: expected string, got null"},
        BadBody{"SampleFieldObject",
                with_samples({process_sample("\"cpu_pct\":0.5", "\"cpu_pct\":{}")}),
                "samples[0].cpu_pct: expected number, got object"},
        BadBody{"UnknownSampleKind", with_samples({R"({"kind":"disk","ts_ns":1})"}),
                R"(samples[0].kind: unknown kind "disk" (expected "process", "host" or "cgroup"))"},
        BadBody{"MissingSampleKind", with_samples({R"({"ts_ns":1})"}), "samples[0].kind: missing"},
        BadBody{"CgroupLineInVersion2", in_version(2, with_samples({cgroup_sample("", "")})),
                "samples[0].kind: cgroup lines need protocol version 3"},
        BadBody{"CgroupWithoutPath",
                in_version(3, with_samples({cgroup_sample(R"("cgroup":"/a",)", "")})),
                "samples[0].cgroup: missing"},
        BadBody{"CgroupPathNotAString",
                in_version(3, with_samples({cgroup_sample(R"("cgroup":"/a")", R"("cgroup":7)")})),
                "samples[0].cgroup: expected string, got unsigned integer"},
        BadBody{"CgroupProcessesPast32Bits",
                in_version(3, with_samples({cgroup_sample(R"("processes":1)",
                                                          R"("processes":4294967296)")})),
                "samples[0].processes: 4294967296 is out of range (at most 4294967295)"},
        BadBody{"CgroupNegativeThrottledTime",
                in_version(3, with_samples({cgroup_sample(R"("throttled_ns":8)",
                                                          R"("throttled_ns":-8)")})),
                "samples[0].throttled_ns: expected unsigned integer, got negative integer"},
        BadBody{"CgroupPeriodsAsText",
                in_version(3, with_samples({cgroup_sample(R"("nr_periods":7)",
                                                          R"("nr_periods":"7")")})),
                "samples[0].nr_periods: expected unsigned integer, got string"},
        BadBody{"CgroupLimitAsText",
                in_version(3, with_samples({cgroup_sample(R"("limit_cpus":0.5)",
                                                          R"("limit_cpus":"0.5")")})),
                "samples[0].limit_cpus: expected number, got string"},
        BadBody{"CgroupWithoutLimit",
                in_version(3, with_samples({cgroup_sample(R"(,"limit_cpus":0.5)", "")})),
                "samples[0].limit_cpus: missing"},
        BadBody{"DuplicateSampleKey",
                with_samples({process_sample("\"pid\":3", "\"pid\":3,\"pid\":4")}),
                "samples[0].pid: duplicate key"},
        BadBody{"DuplicateTopKey", R"({"version":1,"seq":1,"seq":2})", "seq: duplicate key"},
        BadBody{"GapMissing", R"({"version":1,"agent_id":"a","host":"h","seq":1,"kind":"gap"})",
                "gap: missing"},
        BadBody{"GapFieldWrongType",
                R"({"version":1,"agent_id":"a","host":"h","seq":1,"kind":"gap","gap":)"
                R"({"first_seq":1,"last_seq":"2","samples":1,"reason":"cap","time_ns":1}})",
                "gap.last_seq: expected unsigned integer, got string"},
        BadBody{"GapReversed",
                R"({"version":1,"agent_id":"a","host":"h","seq":9,"kind":"gap","gap":)"
                R"({"first_seq":5,"last_seq":2,"samples":1,"reason":"cap","time_ns":1}})",
                "gap: first_seq 5 is after last_seq 2"},
        BadBody{"GapHalfZero",
                R"({"version":1,"agent_id":"a","host":"h","seq":9,"kind":"gap","gap":)"
                R"({"first_seq":0,"last_seq":2,"samples":1,"reason":"cap","time_ns":1}})",
                "gap: first_seq and last_seq must both be 0 (samples lost before getting a seq) "
                "or both be at least 1"},
        BadBody{"PredecessorNotAnObject", with_predecessor(R"("old")"),
                "gap.predecessor: expected object, got string"},
        BadBody{"PredecessorNull", with_predecessor("null"),
                "gap.predecessor: expected object, got null"},
        BadBody{"PredecessorArray", with_predecessor(R"(["old",3])"),
                "gap.predecessor: expected object, got array"},
        BadBody{"PredecessorAgentIdMissing", with_predecessor(R"({"last_seq":3})"),
                "gap.predecessor.agent_id: missing"},
        BadBody{"PredecessorAgentIdNumber", with_predecessor(R"({"agent_id":5,"last_seq":3})"),
                "gap.predecessor.agent_id: expected string, got unsigned integer"},
        BadBody{"PredecessorAgentIdObject",
                with_predecessor(R"({"agent_id":{"id":"old"},"last_seq":3})"),
                "gap.predecessor.agent_id: expected string, got object"},
        BadBody{"PredecessorAgentIdEmpty", with_predecessor(R"({"agent_id":"","last_seq":3})"),
                "gap.predecessor.agent_id: must not be empty"},
        BadBody{"PredecessorAgentIdTooLong",
                with_predecessor(R"({"agent_id":")" + std::string(257, 'x') + R"(","last_seq":3})"),
                "gap.predecessor.agent_id: longer than 256 bytes"},
        BadBody{"PredecessorIsItself", with_predecessor(R"({"agent_id":"a","last_seq":3})"),
                "gap.predecessor.agent_id: names this agent itself"},
        BadBody{"PredecessorLastSeqMissing", with_predecessor(R"({"agent_id":"old"})"),
                "gap.predecessor.last_seq: missing"},
        BadBody{"PredecessorLastSeqString",
                with_predecessor(R"({"agent_id":"old","last_seq":"3"})"),
                "gap.predecessor.last_seq: expected unsigned integer, got string"},
        BadBody{"PredecessorLastSeqNegative",
                with_predecessor(R"({"agent_id":"old","last_seq":-3})"),
                "gap.predecessor.last_seq: expected unsigned integer, got negative integer"},
        BadBody{"PredecessorLastSeqFraction",
                with_predecessor(R"({"agent_id":"old","last_seq":3.0})"),
                "gap.predecessor.last_seq: expected unsigned integer, got number with a fraction "
                "or exponent"},
        BadBody{"PredecessorLastSeqTooLarge",
                with_predecessor(R"({"agent_id":"old","last_seq":9223372036854775808})"),
                "gap.predecessor.last_seq: 9223372036854775808 is out of range (at most "
                "9223372036854775807)"},
        BadBody{"PredecessorDuplicateKey",
                with_predecessor(R"({"agent_id":"old","agent_id":"older","last_seq":3})"),
                "gap.predecessor.agent_id: duplicate key"},
        BadBody{"PredecessorTwice",
                R"({"version":1,"agent_id":"a","host":"h","seq":1,"kind":"gap","gap":)"
                R"({"first_seq":0,"last_seq":0,"samples":0,"reason":"outbox_lost","time_ns":1,)"
                R"("predecessor":{"agent_id":"x","last_seq":1},)"
                R"("predecessor":{"agent_id":"y","last_seq":1}}})",
                "gap.predecessor: duplicate key"},
        BadBody{"PredecessorWithOwnSeqs",
                R"({"version":1,"agent_id":"a","host":"h","seq":9,"kind":"gap","gap":)"
                R"({"first_seq":2,"last_seq":3,"samples":1,"reason":"outbox_lost","time_ns":1,)"
                R"("predecessor":{"agent_id":"old","last_seq":3}}})",
                "gap.predecessor: first_seq and last_seq must be 0 (the seqs declared lost are "
                "the predecessor's, up to predecessor.last_seq)"}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(RequestDecoder, RejectsNestingDeeperThanTheLimit) {
  std::string body = R"({"version":1,"x":)" + std::string(100, '[') + std::string(100, ']') + "}";
  Rejection r = rejected(decode(body));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.message, "body: nesting deeper than 64 levels");
}

TEST(RequestDecoder, RejectsUnknownEncodingAndContentTypeWith415) {
  Rejection r = rejected(decode("{}", "br"));
  EXPECT_EQ(r.status, 415u);
  EXPECT_EQ(r.message, R"(Content-Encoding: unsupported "br" (accepted: gzip, identity))");
  r = rejected(decode("{}", "gzip, gzip"));
  EXPECT_EQ(r.status, 415u);
  r = rejected(decode_batch_request("text/plain", "", "{}", {}));
  EXPECT_EQ(r.status, 415u);
  EXPECT_EQ(r.message, R"(Content-Type: expected application/json, got "text/plain")");
  EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(is_json_content_type(""));
}

TEST(RequestDecoder, CorruptOrTruncatedGzipIs400) {
  std::string z = test::gzip(samples_body("a", "h", 1, agent_lines("h", 5, 3)));
  Rejection r = rejected(decode(z.substr(0, z.size() / 2), "gzip"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.message, "body: gzip: stream truncated");
  std::string corrupt = z;
  corrupt[corrupt.size() - 5] ^= 0x55;  // the CRC32 trailer
  r = rejected(decode(corrupt, "gzip"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.message, "body: gzip: incorrect data check");
  r = rejected(decode(z + "junk", "gzip"));
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.message, "body: gzip: incorrect header check");
  r = rejected(decode("not gzip at all", "gzip"));
  EXPECT_EQ(r.status, 400u);
}

TEST(RequestDecoder, BodyOverTheCompressedLimitIs413) {
  DecodeLimits limits{100, 1000};
  Rejection r = rejected(decode(std::string(101, ' '), "", limits));
  EXPECT_EQ(r.status, 413u);
  EXPECT_EQ(r.message, "body: 101 bytes, more than the limit of 100");
}

TEST(RequestDecoder, ZipBombIs413WithoutDecodingItAll) {
  std::string bomb = test::gzip_zeros(200u << 20);
  ASSERT_LT(bomb.size(), 1u << 20);
  Rejection r = rejected(decode(bomb, "gzip"));
  EXPECT_EQ(r.status, 413u);
  EXPECT_EQ(r.message, "body: decodes to more than the limit of 134217728 bytes");
}

TEST(RequestDecoder, ValidJsonThatDecodesPastTheLimitIs413) {
  // Valid JSON padded with whitespace: the parser would accept it, the
  // limit must not.
  std::string body = samples_body("a", "h", 1, agent_lines("h", 5, 2));
  DecodeLimits limits{1u << 20, body.size() + 10};
  EXPECT_TRUE(std::holds_alternative<BatchRequest>(
      decode(test::gzip(body + std::string(10, ' ')), "gzip", limits)))
      << "exactly at the limit is fine";
  Rejection r = rejected(decode(test::gzip(body + std::string(11, ' ')), "gzip", limits));
  EXPECT_EQ(r.status, 413u);
  r = rejected(decode(body + std::string(11, ' '), "identity", limits));
  EXPECT_EQ(r.status, 413u);
}

}  // namespace
}  // namespace tally::collector
