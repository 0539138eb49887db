#include "native_format.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include "gzip.h"

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

TEST(NativeFormat, WrapsTheCommittedLinesUnchangedInTheEnvelope) {
  NativeFormat f("agent-1", "web \"1\"");
  auto batch = data_batch(7, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}", 3);
  auto lines = split_lines(batch.payload);
  auto body = f.encode(batch, lines, 0, 3);
  ASSERT_TRUE(body.ok());
  auto j = nlohmann::json::parse(*body);
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["agent_id"], "agent-1");
  EXPECT_EQ(j["host"], "web \"1\"");
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["kind"], "samples");
  EXPECT_EQ(j["first_index"], 0);
  EXPECT_EQ(j["batch_samples"], 3);
  ASSERT_EQ(j["samples"].size(), 3u);
  EXPECT_EQ(j["samples"][2]["c"], 3);
  EXPECT_NE(body->find("[{\"a\":1},{\"b\":2},{\"c\":3}]"), std::string::npos);
}

TEST(NativeFormat, APieceKeepsTheBatchIdentityAndItsFirstIndex) {
  NativeFormat f("agent-1", "h");
  auto batch = data_batch(9, "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"i\":3}", 4);
  auto lines = split_lines(batch.payload);
  auto j = nlohmann::json::parse(*f.encode(batch, lines, 2, 2));
  EXPECT_EQ(j["seq"], 9);
  EXPECT_EQ(j["first_index"], 2);
  EXPECT_EQ(j["batch_samples"], 4);
  ASSERT_EQ(j["samples"].size(), 2u);
  EXPECT_EQ(j["samples"][0]["i"], 2);
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
}

TEST(NativeFormat, EncodingIsDeterministicSoRetriesSendTheSameBytes) {
  NativeFormat f("agent-1", "h");
  auto batch = data_batch(1, "{\"x\":1}\n{\"y\":2}", 2);
  auto lines = split_lines(batch.payload);
  auto a = gzip_compress(*f.encode(batch, lines, 0, 2), 6);
  auto b = gzip_compress(*f.encode(batch, lines, 0, 2), 6);
  EXPECT_EQ(*a, *b);
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
  EXPECT_EQ(f.classify(401), Outcome::reject);
  EXPECT_EQ(f.classify(404), Outcome::reject);
  EXPECT_EQ(f.classify(301), Outcome::retry);
}

}  // namespace
}  // namespace tally::shipping
