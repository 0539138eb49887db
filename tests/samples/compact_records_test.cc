// Compact records: what the outbox stores instead of JSON lines. They must
// turn back into exactly the lines tallyd would have stored, keep the names
// a batch was committed with, and tell the dictionary what it may forget.
#include "samples/compact_records.h"
#include "samples/json_line.h"
#include "samples/json_line_reader.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace tally::samples {
namespace {

// The decoded samples as their JSON lines, to compare with the lines of the
// samples they were made from.
Result<std::vector<std::string>> lines_of(Result<std::vector<Sample>> decoded) {
  if (!decoded) return decoded.error();
  std::vector<std::string> out;
  for (const Sample& s : *decoded) out.push_back(to_json_line(s));
  return out;
}

// The outbox's dictionary, as far as the codec sees it.
struct FakeDictionary {
  std::map<std::uint64_t, std::string> entries;
  std::map<std::uint64_t, bool> retired;

  void apply(const queue::DictionaryUpdate& update) {
    for (const auto& [key, value] : update.added) {
      EXPECT_TRUE(entries.emplace(key, value).second) << "key " << key << " added twice";
    }
    for (const auto key : update.retired) retired[key] = true;
  }
  CompactDecoder decoder() {
    return CompactDecoder([this](std::uint64_t key) -> Result<std::optional<std::string>> {
      auto it = entries.find(key);
      if (it == entries.end()) return std::optional<std::string>();
      return std::optional<std::string>(it->second);
    });
  }
};

std::vector<std::string_view> views(const std::vector<std::string>& records) {
  return {records.begin(), records.end()};
}

std::string random_name(std::mt19937_64& rng) {
  static const std::string specials[] = {"\"",       "\\",   "\n", std::string(1, '\0'),
                                         "\xc3\xa9", "\xff", "{",  "\x7f"};
  std::string s;
  for (std::size_t i = 0, n = rng() % 30; i < n; ++i) {
    s += rng() % 10 == 0 ? specials[rng() % std::size(specials)]
                         : std::string(1, static_cast<char>(' ' + rng() % 95));
  }
  return s;
}

ProcessSample process(std::uint32_t pid, std::uint64_t ts, const std::string& host) {
  ProcessSample s;
  s.ts_ns = ts;
  s.interval_ns = 60'000'000'000;
  s.host = host;
  s.pid = pid;
  s.start_time_ns = 1'700'000'000'000'000'000 + pid;
  s.comm = "worker";
  s.cmdline = "/usr/bin/worker --id " + std::to_string(pid);
  s.cgroup = "/system.slice/worker.service";
  s.cpu_ns = 1000 * pid;
  s.cpu_pct = percent(s.cpu_ns, s.interval_ns);
  s.rss_bytes = 4096 * pid;
  return s;
}

// The samples as the sampler makes them: all of the interval's time.
IntervalSamples interval_of(std::vector<ProcessSample> processes, std::uint64_t ts,
                            bool keep_their_time = false) {
  IntervalSamples out;
  out.processes = std::move(processes);
  if (!keep_their_time) {
    for (auto& p : out.processes) p.ts_ns = ts;
  }
  out.host.ts_ns = ts;
  out.host.interval_ns = 60'000'000'000;
  out.host.host = "web-1";
  out.host.ncpu = 16;
  out.host.busy_ns = 123'456'789;
  out.host.cpu_pct = percent(out.host.busy_ns, out.host.interval_ns * 16);
  out.host.processes = static_cast<std::uint32_t>(out.processes.size());
  out.host.dropped_updates = 2;
  return out;
}

TEST(CompactRecords, RandomIntervalsDecodeToTheJsonLinesTheyWereMadeFrom) {
  std::mt19937_64 rng(7);
  FakeDictionary dict;
  CompactEncoder encoder(1);
  CompactDecoder decoder = dict.decoder();
  std::map<std::uint32_t, ProcessSample> alive;
  std::uint32_t next_pid = 100;
  for (int round = 0; round < 200; ++round) {
    const std::uint64_t ts = 1'800'000'000'000'000'000ULL + round * 60'000'000'000ULL;
    std::vector<ProcessSample> processes;
    while (alive.size() < 20) {
      ProcessSample s = process(next_pid++, ts, "web-1");
      s.comm = random_name(rng);
      s.cmdline = random_name(rng);
      s.cgroup = random_name(rng);
      alive[s.pid] = s;
    }
    for (auto it = alive.begin(); it != alive.end();) {
      ProcessSample s = it->second;
      s.ts_ns = ts;
      s.cpu_ns = rng() % 3 == 0 ? rng() : rng() % 100'000'000'000ULL;
      s.cpu_pct = percent(s.cpu_ns, s.interval_ns);
      s.rss_bytes = rng() % 4 == 0 ? rng() : (rng() % 1'000'000) * 4096;
      if (rng() % 10 == 0) {  // an exec renames it
        s.comm = random_name(rng);
        s.cmdline = random_name(rng);
        it->second = s;
      }
      s.exited = rng() % 8 == 0;
      processes.push_back(s);
      it = s.exited ? alive.erase(it) : std::next(it);
    }
    const IntervalSamples interval = interval_of(std::move(processes), ts);
    const CompactInterval compact = encoder.encode(interval);
    dict.apply(compact.dictionary);
    for (const auto& r : compact.records) {
      ASSERT_EQ(r.find('\n'), std::string::npos);
      ASSERT_FALSE(r.empty());
    }
    for (const auto& r : compact.records) ASSERT_TRUE(is_compact_record(r));
    auto lines = lines_of(decoder.decode(views(compact.records)));
    ASSERT_TRUE(lines.ok()) << lines.error().message();
    ASSERT_EQ(*lines, json_lines(interval)) << "round " << round;
  }
}

TEST(CompactRecords, ARecordIsADozenBytesAndNamesAreWrittenOncePerProcess) {
  FakeDictionary dict;
  CompactEncoder encoder(1);
  std::vector<ProcessSample> processes;
  for (std::uint32_t pid = 1000; pid < 2000; ++pid) processes.push_back(process(pid, 1, "web-1"));
  const auto first = encoder.encode(interval_of(processes, 1));
  EXPECT_EQ(first.dictionary.added.size(), 1001u);  // 1,000 names and the interval
  const auto second = encoder.encode(interval_of(processes, 2));
  EXPECT_EQ(second.dictionary.added.size(), 1u);  // the interval only
  std::size_t bytes = 0;
  for (const auto& r : second.records) bytes += r.size();
  EXPECT_LE(bytes, 1001u * 16) << "bytes per record: " << bytes / 1001.0;
  EXPECT_LT(bytes, 1001u * 430 / 20);
}

TEST(CompactRecords, TheDictionaryIsToldWhatNoLaterRecordWillReferTo) {
  FakeDictionary dict;
  CompactEncoder encoder(10);
  ProcessSample a = process(1, 1, "web-1");
  ProcessSample b = process(2, 1, "web-1");
  auto one = encoder.encode(interval_of({a, b}, 1));
  ASSERT_EQ(one.dictionary.added.size(), 3u);
  EXPECT_EQ(one.dictionary.added[0].first, 10u);  // the interval, from the first key
  EXPECT_EQ(one.dictionary.retired, std::vector<std::uint64_t>{10});
  const std::uint64_t key_a = one.dictionary.added[1].first;
  const std::uint64_t key_b = one.dictionary.added[2].first;

  a.cmdline = "/usr/bin/other";  // exec: new names, a new key, the old one retired
  b.exited = true;               // exit: its key retired
  auto two = encoder.encode(interval_of({a, b}, 2));
  ASSERT_EQ(two.dictionary.added.size(), 2u);
  EXPECT_NE(two.dictionary.added[1].first, key_a);
  EXPECT_EQ(two.dictionary.retired,
            (std::vector<std::uint64_t>{two.dictionary.added[0].first, key_a, key_b}));
  EXPECT_EQ(encoder.processes_known(), 1u);
}

TEST(CompactRecords, AfterAnIntervalThatWasNotStoredEverythingIsNamedAgain) {
  FakeDictionary dict;
  CompactEncoder encoder(1);
  CompactDecoder decoder = dict.decoder();
  const ProcessSample a = process(1, 1, "web-1");
  auto stored = encoder.encode(interval_of({a}, 1));
  dict.apply(stored.dictionary);
  const std::uint64_t key_a = stored.dictionary.added[1].first;
  (void)encoder.encode(interval_of({process(2, 2, "web-1")}, 2));  // never stored
  encoder.not_stored();
  auto next = encoder.encode(interval_of({a, process(2, 3, "web-1")}, 3));
  dict.apply(next.dictionary);
  EXPECT_EQ(next.dictionary.added.size(), 3u);  // interval, a and 2 again
  EXPECT_NE(std::find(next.dictionary.retired.begin(), next.dictionary.retired.end(), key_a),
            next.dictionary.retired.end());
  auto lines = lines_of(decoder.decode(views(next.records)));
  ASSERT_TRUE(lines.ok()) << lines.error().message();
  EXPECT_EQ(*lines, json_lines(interval_of({a, process(2, 3, "web-1")}, 3)));
}

TEST(CompactRecords, SamplesWithTheirOwnTimeOrHostKeepIt) {
  FakeDictionary dict;
  CompactEncoder encoder(1);
  const IntervalSamples interval =
      interval_of({process(1, 1, "web-1"), process(2, 5, "web-1"), process(3, 1, "db-1")}, 1, true);
  auto compact = encoder.encode(interval);
  dict.apply(compact.dictionary);
  auto lines = lines_of(dict.decoder().decode(views(compact.records)));
  ASSERT_TRUE(lines.ok()) << lines.error().message();
  EXPECT_EQ(*lines, json_lines(interval));
}

TEST(CompactRecords, JsonLinesAmongTheRecordsAreKeptAsTheyAre) {
  // A batch formed across an upgrade from samples staged by an older tallyd.
  FakeDictionary dict;
  CompactEncoder encoder(1);
  const IntervalSamples interval = interval_of({process(1, 1, "web-1")}, 1);
  auto compact = encoder.encode(interval);
  dict.apply(compact.dictionary);
  const std::string old_line = to_json_line(process(7, 0, "web-1"));
  std::vector<std::string> mixed{old_line};
  mixed.insert(mixed.end(), compact.records.begin(), compact.records.end());
  auto lines = lines_of(dict.decoder().decode(views(mixed)));
  ASSERT_TRUE(lines.ok()) << lines.error().message();
  std::vector<std::string> expected{old_line};
  for (const auto& l : json_lines(interval)) expected.push_back(l);
  EXPECT_EQ(*lines, expected);
  EXPECT_FALSE(is_compact_record(old_line));
}

TEST(CompactRecords, DamagedRecordsAndMissingEntriesAreErrorsThatSayWhich) {
  FakeDictionary dict;
  CompactEncoder encoder(1);
  auto compact = encoder.encode(interval_of({process(1, 1, "web-1")}, 1));
  dict.apply(compact.dictionary);
  auto decode = [&](std::vector<std::string> records) {
    auto r = lines_of(dict.decoder().decode(views(records)));
    return r.ok() ? std::string("ok") : r.error().message();
  };
  EXPECT_EQ(decode(compact.records), "ok");
  const std::string p = compact.records[0];
  EXPECT_NE(decode({p, "q@@@"}).find("compact record 1"), std::string::npos) << decode({p, "q@@@"});
  // Cut inside a required field (the last byte is wait_ns, the one before
  // ends the RSS).
  EXPECT_NE(decode({p.substr(0, p.size() - 2)}).find("compact record 0"), std::string::npos);
  EXPECT_NE(decode({p + "@"}).find("after the last field"), std::string::npos);
  dict.entries.erase(compact.dictionary.added[1].first);
  EXPECT_NE(decode({p}).find("has no dictionary entry"), std::string::npos) << decode({p});
}

// Records and entries of a tallyd from before wait, container and host
// pressure fields end early; they read back with those fields 0 or empty.
// And this release's fields make the round trip.
TEST(CompactRecords, ThisReleasesFieldsRoundTripAndOlderRecordsReadAsZero) {
  FakeDictionary dict;
  CompactEncoder encoder(1);
  ProcessSample p = process(7, 1, "web-1");
  p.cgroup = "/kubepods/burstable/pod1/abc";
  p.container_id = "abc";
  p.container_runtime = "cri";
  p.pod_uid = "8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
  p.pod_qos = "burstable";
  p.pod = "web-0";
  p.pod_namespace = "shop";
  p.container = "nginx";
  p.wait_ns = 30'000'000'000;
  IntervalSamples interval = interval_of({p}, 1);
  interval.processes[0].wait_pct = percent(p.wait_ns, interval.processes[0].interval_ns);
  interval.host.steal_ns = 11;
  interval.host.psi_some_ns = 12;
  interval.host.psi_full_ns = 13;
  interval.host.unaccounted_ns = -14;
  interval.host.bpf_run_ns = 15;
  auto compact = encoder.encode(interval);
  dict.apply(compact.dictionary);
  auto decoded = dict.decoder().decode(views(compact.records));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ(to_json_line((*decoded)[0]), to_json_line(interval.processes[0]));
  EXPECT_EQ(to_json_line((*decoded)[1]), to_json_line(interval.host));

  // The same records and entry as the first release wrote them: the process
  // record without its wait_ns, the host record without its last five
  // numbers, the names entry without the seven container and pod strings.
  std::string old_process = compact.records[0];
  old_process.pop_back();  // wait_ns: 30e9 does not fit one byte, so cut its bytes
  while (!old_process.empty() && (static_cast<unsigned char>(old_process.back()) & 0xc0) == 0x80) {
    old_process.pop_back();
  }
  std::string old_host = compact.records[1];
  old_host.resize(old_host.size() - 5);  // 11, 12, 13, zigzag(-14) = 27, 15: one byte each
  FakeDictionary old_dict;
  for (auto [key, entry] : dict.entries) {
    if (entry.front() == 'n') {
      // Seven strings, each under 64 bytes: one length byte each.
      std::size_t tail = 0;
      for (const std::string* s : {&p.container_id, &p.container_runtime, &p.pod_uid, &p.pod_qos,
                                   &p.pod, &p.pod_namespace, &p.container}) {
        tail += 1 + s->size();
      }
      entry.resize(entry.size() - tail);
    }
    old_dict.entries.emplace(key, entry);
  }
  auto old = old_dict.decoder().decode(views({old_process, old_host}));
  ASSERT_TRUE(old.ok()) << old.error().message();
  const auto& op = std::get<ProcessSample>((*old)[0]);
  EXPECT_EQ(op.wait_ns, 0u);
  EXPECT_EQ(op.cpu_ns, p.cpu_ns);
  EXPECT_EQ(op.cgroup, p.cgroup);
  EXPECT_TRUE(op.container_id.empty());
  EXPECT_TRUE(op.pod.empty());
  const auto& oh = std::get<HostSample>((*old)[1]);
  EXPECT_EQ(oh.steal_ns, 0u);
  EXPECT_EQ(oh.unaccounted_ns, 0);
  EXPECT_EQ(oh.busy_ns, interval.host.busy_ns);
}

}  // namespace
}  // namespace tally::samples

namespace tally::samples {
namespace {

CgroupSample cgroup_line(std::mt19937_64& rng, const std::string& path, std::uint64_t ts) {
  CgroupSample c;
  c.ts_ns = ts;
  c.interval_ns = 60'000'000'000;
  c.host = "web-1";
  c.cgroup = path;
  if (rng() % 2) {
    c.container_id = random_name(rng);
    c.container_runtime = "docker";
    c.pod_uid = random_name(rng);
    c.pod = random_name(rng);
    c.pod_namespace = "default";
    c.container = random_name(rng);
  }
  c.processes = static_cast<std::uint32_t>(rng() % 50);
  c.process_cpu_ns = rng() % 100'000'000'000ULL;
  c.usage_known = rng() % 4 != 0;
  c.cpu_ns = c.usage_known ? rng() % 100'000'000'000ULL : 0;
  c.cpu_pct = percent(c.cpu_ns, c.interval_ns);
  c.throttling_known = rng() % 3 != 0;
  if (c.throttling_known) {
    c.nr_periods = rng() % 600;
    c.nr_throttled = rng() % 600;
    c.throttled_ns = rng() % 60'000'000'000ULL;
  }
  c.pressure_known = rng() % 2 != 0;
  if (c.pressure_known) {
    c.psi_some_ns = rng() % 60'000'000'000ULL;
    c.psi_full_ns = rng() % 60'000'000'000ULL;
  }
  // As the sampler rounds it: quota / period to a millionth of a CPU.
  c.limit_cpus = rng() % 3 == 0 ? 0 : cpus_of_millionths(cpu_millionths((rng() % 64000) / 1000.0));
  return c;
}

TEST(CompactRecords, CgroupLinesRoundTripAndTheirEntriesAreRetiredWhenIdle) {
  std::mt19937_64 rng(11);
  FakeDictionary dict;
  CompactEncoder encoder(1);
  CompactDecoder decoder = dict.decoder();
  const std::vector<std::string> paths = {"/system.slice/nginx.service", "/docker/abc",
                                          "/kubepods/burstable/pod1/c1", "/odd \"path\"\n"};
  for (int round = 0; round < 100; ++round) {
    const std::uint64_t ts = 1'800'000'000'000'000'000ULL + round * 60'000'000'000ULL;
    IntervalSamples interval = interval_of({process(7, ts, "web-1")}, ts);
    // The first path stops after round 50: its entry must be retired.
    for (std::size_t i = round < 50 ? 0 : 1; i < paths.size(); ++i) {
      interval.cgroups.push_back(cgroup_line(rng, paths[i], ts));
    }
    const CompactInterval compact = encoder.encode(interval);
    dict.apply(compact.dictionary);
    ASSERT_EQ(compact.records.size(), interval.processes.size() + interval.cgroups.size() + 1);
    auto lines = lines_of(decoder.decode(views(compact.records)));
    ASSERT_TRUE(lines.ok()) << lines.error().message();
    ASSERT_EQ(*lines, json_lines(interval)) << "round " << round;
    // Every line reads back from its JSON too (tallyd --stdout readers).
    for (const auto& line : *lines) {
      auto parsed = parse_json_line(line);
      ASSERT_TRUE(parsed.ok()) << parsed.error().message() << ": " << line;
      EXPECT_EQ(to_json_line(*parsed), line);
    }
  }
  // Names changed most rounds (random container fields): each change is a
  // new entry, the old one retired; the idle path's last one is retired too.
  std::size_t live_cgroup_entries = 0;
  for (const auto& [key, entry] : dict.entries) {
    if (entry[0] == 'g' && !dict.retired.count(key)) ++live_cgroup_entries;
  }
  EXPECT_EQ(live_cgroup_entries, 3u) << "one per path still reported";
  EXPECT_EQ(encoder.cgroups_known(), 3u);
}

TEST(CompactRecords, ADamagedCgroupRecordIsAnErrorThatSaysWhich) {
  FakeDictionary dict;
  dict.entries[1] = "i";
  CompactDecoder decoder = dict.decoder();
  const std::vector<std::string> records = {"c\x41\x42"};  // ends after two fields
  auto decoded = decoder.decode(views(records));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message().find("compact record 0"), std::string::npos)
      << decoded.error().message();
}

}  // namespace
}  // namespace tally::samples
