// collector_ingest: how fast tally-collector stores a fleet's batches, and
// how many bytes a stored sample takes on its disk, for this collector and,
// side by side in the same run, a baseline build (today's collector before a
// change; scripts/bench builds it).
//
// Each of --hosts agents has its own realistic mix (bench/realistic_mix.h,
// the wire row's generator: 1,000 processes, names repeating across
// intervals) and its --intervals batches, encoded before the clock starts
// exactly as tallyd sends them: NativeFormat protocol version 2 (names once
// per process, then left out) and gzip level 6. One client thread per agent
// posts them in seq order over one keep-alive connection. The collector
// runs with its defaults (durability full: one fsync per request). The rate
// is stored samples over the wall time from the first request to the last
// answer; the size is the database file plus its WAL, over samples stored,
// read while the collector still runs. Arms alternate for --repetitions
// rounds. Prints one JSON object.
//
//   collector_ingest [--collector PATH] [--baseline PATH] [--hosts 4]
//                    [--intervals 150] [--processes 1000] [--repetitions 2] [--dir DIR]
//                    [--keep 1]
#include <curl/curl.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "collector_process.h"
#include "realistic_mix.h"
#include "samples/json_line.h"
#include "shipping/gzip.h"
#include "shipping/native_format.h"
#include "shipping/sink_format.h"

namespace {

namespace fs = std::filesystem;

struct Agent {
  std::vector<std::string> bodies;  // gzip
  std::uint64_t samples = 0;
};

Agent encode_agent(int host, int intervals, std::size_t processes) {
  Agent a;
  const std::string name = "host-" + std::to_string(host);
  tally::bench::RealisticMix mix(
      {processes, true, false, 60'000'000'000ULL, static_cast<std::uint32_t>(42 + host)});
  tally::shipping::NativeFormat format("agent-" + std::to_string(host), name);
  for (int t = 0; t < intervals; ++t) {
    tally::samples::IntervalSamples interval = mix.next_interval_samples();
    // Hosts of one fleet: the mix names every host the same.
    for (auto& p : interval.processes) p.host = name;
    interval.host.host = name;
    std::vector<tally::samples::Sample> samples(interval.processes.begin(),
                                                interval.processes.end());
    samples.emplace_back(interval.host);
    tally::queue::Batch batch;
    batch.seq = static_cast<std::uint64_t>(t + 1);
    for (const auto& line : tally::samples::json_lines(interval)) {
      if (!batch.payload.empty()) batch.payload += '\n';
      batch.payload += line;
    }
    const auto n = static_cast<std::uint32_t>(samples.size());
    batch.sample_count = n;
    auto body = format.encode(batch, samples, 0, n);
    if (!body.ok()) {
      std::fprintf(stderr, "collector_ingest: %s\n", body.error().message().c_str());
      std::exit(1);
    }
    format.acknowledged(samples, 0, n);
    auto gz = tally::shipping::gzip_compress(*body, 6);
    if (!gz.ok()) std::exit(1);
    a.bodies.push_back(std::move(*gz));
    a.samples += n;
  }
  return a;
}

// Posts every body in order; false on any answer but 200.
bool post_all(const std::string& url, const Agent& agent, std::string& error) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return false;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Content-Encoding: gzip");
  std::string answer;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* out) {
        static_cast<std::string*>(out)->append(data, size * n);
        return size * n;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  bool ok = true;
  for (const std::string& body : agent.bodies) {
    answer.clear();
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || status != 200) {
      error = rc != CURLE_OK ? curl_easy_strerror(rc) : std::to_string(status) + " " + answer;
      ok = false;
      break;
    }
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return ok;
}

struct Run {
  double samples_per_s = 0;
  double bytes_per_sample = 0;
  double wal_bytes_per_sample = 0;  // of bytes_per_sample
};

std::uint64_t size_or_zero(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// The bytes count the rollups too (housekeeper.h): the collector sums each
// minute in the background once it is over, so wait until nothing is left
// to sum (a collector from before rollups has no such table: no wait).
void wait_for_rollups(const fs::path& db) {
  for (int i = 0; i < 600; ++i) {
    sqlite3* conn = nullptr;
    std::int64_t due = 0;
    if (sqlite3_open_v2(db.c_str(), &conn, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_busy_timeout(conn, 1000);
      sqlite3_stmt* q = nullptr;
      if (sqlite3_prepare_v2(conn, "SELECT count(*) FROM rollup_dirty", -1, &q, nullptr) ==
              SQLITE_OK &&
          sqlite3_step(q) == SQLITE_ROW) {
        due = sqlite3_column_int64(q, 0);
      }
      sqlite3_finalize(q);
    }
    sqlite3_close(conn);
    if (due == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

bool run_arm(const std::string& collector, const fs::path& dir, const std::vector<Agent>& agents,
             Run& out) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path db = dir / "collector.db";
  tally::bench::Collector c;
  if (!tally::bench::start_collector(c, collector, db.string())) {
    std::fprintf(stderr, "collector_ingest: could not start %s\n", collector.c_str());
    return false;
  }
  const std::string url = "http://" + c.listen + "/v1/batches";
  std::atomic<bool> failed{false};
  std::vector<std::thread> clients;
  std::uint64_t samples = 0;
  const auto begin = std::chrono::steady_clock::now();
  for (const Agent& a : agents) {
    samples += a.samples;
    clients.emplace_back([&url, &a, &failed] {
      std::string error;
      if (!post_all(url, a, error)) {
        std::fprintf(stderr, "collector_ingest: %s\n", error.c_str());
        failed = true;
      }
    });
  }
  for (auto& t : clients) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  if (failed) return false;
  out.samples_per_s = static_cast<double>(samples) / seconds;
  wait_for_rollups(db);
  const std::uint64_t wal = size_or_zero(db.string() + "-wal");
  const std::uint64_t bytes = size_or_zero(db) + wal;
  out.bytes_per_sample = static_cast<double>(bytes) / static_cast<double>(samples);
  out.wal_bytes_per_sample = static_cast<double>(wal) / static_cast<double>(samples);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string collector = (fs::path(argv[0]).parent_path().parent_path() / "userspace" /
                           "collector" / "tally-collector")
                              .string();
  std::string baseline;
  int hosts = 4;
  int intervals = 150;
  std::size_t processes = 1000;
  int repetitions = 2;
  fs::path dir = fs::path(TALLY_BENCH_DEFAULT_DIR) / "ingest";
  bool keep = false;  // --keep 1: leave the databases for a look
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--keep")) keep = std::atoi(argv[i + 1]) != 0;
    if (!std::strcmp(argv[i], "--collector")) collector = argv[i + 1];
    if (!std::strcmp(argv[i], "--baseline")) baseline = argv[i + 1];
    if (!std::strcmp(argv[i], "--hosts")) hosts = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--intervals")) intervals = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--processes")) processes = std::strtoul(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--repetitions")) repetitions = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::vector<Agent> agents;
  std::uint64_t body_bytes = 0, samples = 0;
  for (int h = 0; h < hosts; ++h) {
    agents.push_back(encode_agent(h, intervals, processes));
    for (const auto& b : agents.back().bodies) body_bytes += b.size();
    samples += agents.back().samples;
  }

  struct Arm {
    std::string name, path;
    std::vector<double> rates, bytes, wal;
  };
  std::vector<Arm> arms;
  if (!baseline.empty()) arms.push_back({"baseline", baseline, {}, {}, {}});
  arms.push_back({"tally", collector, {}, {}, {}});
  for (int r = 0; r < repetitions; ++r) {
    for (Arm& arm : arms) {
      Run run;
      if (!run_arm(arm.path, dir / arm.name, agents, run)) return 1;
      arm.rates.push_back(run.samples_per_s);
      arm.bytes.push_back(run.bytes_per_sample);
      arm.wal.push_back(run.wal_bytes_per_sample);
    }
  }
  if (!keep) fs::remove_all(dir);

  nlohmann::json out;
  out["hosts"] = hosts;
  out["intervals"] = intervals;
  out["population"] = processes;
  out["samples"] = samples;
  out["clients"] = hosts;
  out["gzip_bytes_per_sample"] = static_cast<double>(body_bytes) / static_cast<double>(samples);
  for (const Arm& arm : arms) {
    out["arms"][arm.name] = {{"samples_per_s", tally::bench::summary(arm.rates)},
                             {"bytes_per_sample", tally::bench::summary(arm.bytes)},
                             {"wal_bytes_per_sample", tally::bench::summary(arm.wal)}};
  }
  if (!baseline.empty()) {
    out["ingest_ratio"] = tally::bench::median(arms[1].rates) / tally::bench::median(arms[0].rates);
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
