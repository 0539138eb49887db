// The remote write format on its own: the protobuf it writes (decoded with
// the same generated messages a receiver would use), counters that add up
// across batches, pieces and restarts, and the spec's response rules.
#include "shipping/remote_write_format.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "remote_write.pb.h"
#include "shipping/snappy_block.h"
#include "temp_dir.h"

namespace tally::shipping {
namespace remote_write_test {

namespace pb = tally::remote_write;
using samples::HostSample;
using samples::ProcessSample;
using samples::Sample;

constexpr std::uint64_t kInterval = 10'000'000'000ULL;
constexpr std::uint64_t kT0 = 1'700'000'000'000'000'000ULL;

ProcessSample process(std::uint64_t ts, std::uint32_t pid, std::uint64_t cpu_ns,
                      std::string comm = "worker") {
  ProcessSample p;
  p.ts_ns = ts;
  p.interval_ns = kInterval;
  p.host = "web-1";
  p.pid = pid;
  p.start_time_ns = kT0 - 100 * kInterval;
  p.comm = std::move(comm);
  p.cgroup = "/system.slice/app.service";
  p.cpu_ns = cpu_ns;
  p.wait_ns = cpu_ns / 2;
  p.rss_bytes = 1 << 20;
  return p;
}

std::vector<Sample> interval(std::uint64_t ts, std::vector<ProcessSample> lines) {
  std::vector<Sample> out;
  std::uint64_t busy = 0;
  for (auto& p : lines) {
    busy += p.cpu_ns;
    out.emplace_back(std::move(p));
  }
  HostSample h;
  h.ts_ns = ts;
  h.interval_ns = kInterval;
  h.host = "web-1";
  h.ncpu = 2;
  h.busy_ns = busy;
  h.processes = static_cast<std::uint32_t>(out.size());
  out.emplace_back(h);
  return out;
}

queue::Batch batch(std::uint64_t seq, std::size_t samples) {
  queue::Batch b;
  b.seq = seq;
  b.sample_count = static_cast<std::uint32_t>(samples);
  return b;
}

// name{labels} -> [(ts ms, value)]
using Decoded = std::map<std::string, std::vector<std::pair<std::int64_t, double>>>;

Decoded decode(const std::string& body) {
  pb::WriteRequest req;
  EXPECT_TRUE(req.ParseFromString(body));
  Decoded out;
  for (const auto& ts : req.timeseries()) {
    std::string key;
    std::string previous;
    for (const auto& l : ts.labels()) {
      EXPECT_LT(previous, l.name()) << "labels must be sorted by name, without repeats";
      previous = l.name();
      if (l.name() == "__name__") {
        key = l.value() + key;
      } else {
        key += "," + l.name() + "=" + l.value();
      }
    }
    EXPECT_EQ(ts.labels(0).name(), "__name__");
    std::int64_t last = INT64_MIN;
    for (const auto& s : ts.samples()) {
      EXPECT_GT(s.timestamp(), last) << key << ": samples must be in time order";
      last = s.timestamp();
      out[key].emplace_back(s.timestamp(), s.value());
    }
  }
  return out;
}

// Encodes the whole batch and acknowledges it.
Decoded ship(RemoteWriteFormat& f, std::uint64_t seq, const std::vector<Sample>& s) {
  auto body = f.encode(batch(seq, s.size()), s, 0, static_cast<std::uint32_t>(s.size()));
  EXPECT_TRUE(body.ok()) << body.error().message();
  f.acknowledged(s, 0, static_cast<std::uint32_t>(s.size()));
  return decode(*body);
}

std::int64_t ms(std::uint64_t ns) { return static_cast<std::int64_t>(ns / 1'000'000); }

const std::string kCpu1 =
    "tally_process_cpu_seconds_total,cgroup=/system.slice/app.service,comm=worker,host=web-1,pid=1";
const std::string kOther = "tally_other_cpu_seconds_total,host=web-1";

RemoteWriteOptions top(std::uint32_t n) {
  RemoteWriteOptions o;
  o.rollup.top = true;
  o.rollup.top_n = n;
  return o;
}

TEST(RemoteWriteFormat, CountersAddUpAcrossBatchesInSecondsWithMillisecondTimestamps) {
  RemoteWriteFormat f({}, {});
  const Decoded first = ship(f, 1, interval(kT0, {process(kT0, 1, 1'500'000'000)}));
  ASSERT_TRUE(first.count(kCpu1)) << "series missing";
  // A new series starts with its value before the interval (0), so the
  // interval's increase lies between two samples of it.
  EXPECT_EQ(first.at(kCpu1), (std::vector<std::pair<std::int64_t, double>>{
                                 {ms(kT0 - kInterval), 0.0}, {ms(kT0), 1.5}}));
  const Decoded second =
      ship(f, 2, interval(kT0 + kInterval, {process(kT0 + kInterval, 1, 250'000'000)}));
  EXPECT_EQ(second.at(kCpu1),
            (std::vector<std::pair<std::int64_t, double>>{{ms(kT0 + kInterval), 1.75}}));
  EXPECT_EQ(second.at("tally_host_cpu_busy_seconds_total,host=web-1").back().second, 1.75);
  EXPECT_EQ(second.at("tally_host_cpus,host=web-1").back().second, 2.0);
}

TEST(RemoteWriteFormat, AProcessBackInTheTopResumesFromItsLastValueAndTheBooksBalance) {
  RemoteWriteFormat f(top(1), {});
  // pid 1 leads, then pid 2 for one interval, then pid 1 again.
  const std::vector<std::vector<std::pair<std::uint32_t, std::uint64_t>>> plan{
      {{1, 900}, {2, 100}}, {{1, 100}, {2, 800}}, {{1, 700}, {2, 50}}};
  std::map<std::string, double> last;  // series -> last value seen
  for (std::size_t k = 0; k < plan.size(); ++k) {
    const std::uint64_t ts = kT0 + k * kInterval;
    std::vector<ProcessSample> lines;
    std::uint64_t all = 0;
    for (auto [pid, cpu] : plan[k]) {
      lines.push_back(process(ts, pid, cpu));
      all += cpu;
    }
    const Decoded d = ship(f, k + 1, interval(ts, lines));
    // Increase of every cpu series in this interval: from its sample at the
    // end of the interval before (sent now, or earlier) to the one at ts.
    double increase = 0;
    for (const auto& [key, points] : d) {
      const bool cpu = key.rfind("tally_process_cpu_seconds_total", 0) == 0 || key == kOther;
      if (!cpu) continue;
      double before = last.count(key) ? last[key] : 0;
      for (const auto& [t, v] : points) {
        if (t == ms(ts)) increase += v - before;
        before = v;
      }
      last[key] = points.back().second;
    }
    EXPECT_NEAR(increase * 1e9, static_cast<double>(all), 1e-3) << "interval " << k;
  }
  // pid 1 skipped interval 2: its series is 900 ns then 900 ns at the end of
  // interval 2 (unchanged: interval 2's 100 ns went to other), then 1600.
  EXPECT_DOUBLE_EQ(last[kCpu1], 1600e-9);
  EXPECT_DOUBLE_EQ(last[kOther], (100 + 100 + 50) * 1e-9);
}

TEST(RemoteWriteFormat, ARetryAndEveryPieceAreEncodedFromTheSameCounters) {
  RemoteWriteFormat f({}, {});
  ship(f, 1, interval(kT0, {process(kT0, 1, 10)}));
  const auto s = interval(kT0 + kInterval, {process(kT0 + kInterval, 1, 20),
                                            process(kT0 + kInterval, 2, 30, "other-name")});
  const auto whole = f.encode(batch(2, s.size()), s, 0, 3);
  const auto again = f.encode(batch(2, s.size()), s, 0, 3);
  ASSERT_TRUE(whole.ok() && again.ok());
  EXPECT_EQ(*whole, *again);
  // Split in two: the pieces together carry what the whole did.
  const Decoded a = decode(*f.encode(batch(2, s.size()), s, 0, 1));
  const Decoded b = decode(*f.encode(batch(2, s.size()), s, 1, 2));
  Decoded joined = a;
  for (const auto& [k, v] : b) joined[k].insert(joined[k].end(), v.begin(), v.end());
  EXPECT_EQ(joined, decode(*whole));
  EXPECT_TRUE(a.count(kCpu1));
  EXPECT_FALSE(a.count("tally_host_cpus,host=web-1"));  // derived series go with the host line
  f.acknowledged(s, 0, 1);
  f.acknowledged(s, 1, 2);
  EXPECT_EQ(f.counters().after_seq, 2u);
}

TEST(RemoteWriteFormat, CountersSurviveARestartAndACrashBeforeTheOutboxHeardOfTheAck) {
  test::TempDir dir;
  RemoteWriteOptions o;
  o.state_path = dir / "outbox.db.sink-rw.counters";
  const auto s1 = interval(kT0, {process(kT0, 1, 1'000'000'000)});
  const auto s2 = interval(kT0 + kInterval, {process(kT0 + kInterval, 1, 1'000'000'000)});
  std::string sent2;
  {
    RemoteWriteFormat f(o, {});
    ship(f, 1, s1);
    sent2 = *f.encode(batch(2, s2.size()), s2, 0, 2);
    f.acknowledged(s2, 0, 2);  // saved; then the process dies before the outbox's ack
  }
  RemoteWriteFormat restarted(o, {});
  EXPECT_EQ(restarted.counters().after_seq, 2u);
  // The outbox sends batch 2 again: the same bytes, not a batch counted twice.
  EXPECT_EQ(*restarted.encode(batch(2, s2.size()), s2, 0, 2), sent2);
  restarted.acknowledged(s2, 0, 2);
  const auto s3 = interval(kT0 + 2 * kInterval, {process(kT0 + 2 * kInterval, 1, 500'000'000)});
  EXPECT_EQ(ship(restarted, 3, s3).at(kCpu1).back().second, 2.5);  // no reset to 0
}

TEST(RemoteWriteFormat, ADamagedCounterFileStartsTheCountersAfreshWithAWarning) {
  test::TempDir dir;
  RemoteWriteOptions o;
  o.state_path = dir / "counters";
  std::ofstream(o.state_path) << "{\"version\":1,\"current\":{\"after_seq\":\"x\"}}";
  RemoteWriteFormat f(o, {});
  EXPECT_EQ(f.counters().after_seq, 0u);
  EXPECT_EQ(ship(f, 1, interval(kT0, {process(kT0, 1, 2'000'000'000)})).at(kCpu1).back().second,
            2.0);
  // And the good counters replace the damaged file.
  RemoteWriteFormat again(o, {});
  EXPECT_EQ(again.counters().after_seq, 1u);
}

TEST(RemoteWriteFormat, DeadLetteredBatchesStillCount) {
  RemoteWriteFormat f({}, {});
  const auto s1 = interval(kT0, {process(kT0, 1, 1'000'000'000)});
  ASSERT_TRUE(f.encode(batch(1, s1.size()), s1, 0, 2).ok());
  f.dead_lettered(s1, 0, 2);
  const auto s2 = interval(kT0 + kInterval, {process(kT0 + kInterval, 1, 1'000'000'000)});
  EXPECT_EQ(ship(f, 2, s2).at(kCpu1).back().second, 2.0);
}

TEST(RemoteWriteFormat, LabelValuesAreValidUtf8AndEmptyOnesAreLeftOut) {
  RemoteWriteFormat f({}, {});
  ProcessSample p = process(kT0, 9, 1, std::string("bad\xff\xfe", 5));
  p.cgroup.clear();
  pb::WriteRequest req;
  const auto s = interval(kT0, {p});
  ASSERT_TRUE(req.ParseFromString(*f.encode(batch(1, s.size()), s, 0, 2)));
  bool found = false;
  for (const auto& ts : req.timeseries()) {
    for (const auto& l : ts.labels()) {
      EXPECT_NE(l.name(), "cgroup");
      EXPECT_FALSE(l.value().empty());
      if (l.name() == "comm") {
        EXPECT_EQ(l.value(), "bad\xEF\xBF\xBD\xEF\xBF\xBD");
        found = true;
      }
    }
  }
  EXPECT_TRUE(found);
}

TEST(RemoteWriteFormat, ResponsesFollowTheSpec) {
  RemoteWriteFormat f({}, {});
  const auto judge = [&](long status, std::string body = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return f.judge(r);
  };
  EXPECT_EQ(judge(204).outcome, Outcome::ack);
  EXPECT_EQ(judge(200).outcome, Outcome::ack);
  EXPECT_EQ(judge(429).outcome, Outcome::retry);
  EXPECT_EQ(judge(503).outcome, Outcome::retry);
  EXPECT_EQ(judge(413).outcome, Outcome::split);
  const Verdict old = judge(400, "out of order sample\n");
  EXPECT_EQ(old.outcome, Outcome::reject);
  EXPECT_TRUE(old.old_data);
  EXPECT_TRUE(judge(400, "out of bounds").old_data);
  const Verdict bad = judge(400, "invalid labels");
  EXPECT_EQ(bad.outcome, Outcome::reject);
  EXPECT_FALSE(bad.old_data);
  EXPECT_EQ(f.content_encoding(), "snappy");
  EXPECT_EQ(f.extra_headers(),
            std::vector<std::string>{"X-Prometheus-Remote-Write-Version: 0.1.0"});
}

TEST(SnappyBlock, RoundTripsAndRefusesDamageAndOversizedBlocks) {
  const std::string text(100000, 'x');
  const std::string block = snappy_compress(text);
  EXPECT_LT(block.size(), text.size() / 10);
  EXPECT_EQ(*snappy_uncompress(block, 1 << 20), text);
  EXPECT_FALSE(snappy_uncompress(block, 1000).ok());
  EXPECT_FALSE(snappy_uncompress("\xff\xff\xff\xff\xff garbage", 1 << 20).ok());
}

}  // namespace remote_write_test
}  // namespace tally::shipping
