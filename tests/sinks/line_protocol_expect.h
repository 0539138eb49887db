// What a line-protocol server should hold for the samples tallyd committed:
// one expected point per (metric, tag set, timestamp), derived from the
// committed JSON lines by the data model of docs/sinks.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shipping/line_protocol.h"

namespace tally::test {

enum class TagDialect {
  victoria_metrics,  // reads "\\" as one backslash, keeps "\" before other characters
  influxdb_1x,       // unescapes only "\,", "\=" and "\ "
};

// The tag value the server stores for `text` as tally encodes it.
inline std::string stored_tag_value(const std::string& text, TagDialect dialect) {
  std::string wire;
  shipping::line_protocol::append_key(wire, text);
  std::string out;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    const char next = i + 1 < wire.size() ? wire[i + 1] : '\0';
    const bool unescape =
        wire[i] == '\\' && (next == ',' || next == '=' || next == ' ' ||
                            (dialect == TagDialect::victoria_metrics && next == '\\'));
    if (unescape) ++i;
    out += wire[i];
  }
  return out;
}

struct ExpectedPoint {
  std::string measurement;
  std::map<std::string, std::string> tags;
  std::uint64_t ts_ns = 0;
  std::map<std::string, double> fields;  // numeric fields checked exactly
};

// pid repeated at one ts: the start_time tag is added (influx_format.h).
inline std::vector<ExpectedPoint> expected_points(const std::vector<nlohmann::json>& committed,
                                                  TagDialect dialect) {
  std::map<std::pair<std::uint64_t, std::uint64_t>, int> pid_uses;
  for (const auto& j : committed) {
    if (j["kind"] == "process")
      ++pid_uses[{j["ts_ns"].get<std::uint64_t>(), j["pid"].get<std::uint64_t>()}];
  }
  std::vector<ExpectedPoint> out;
  for (const auto& j : committed) {
    ExpectedPoint p;
    p.ts_ns = j["ts_ns"].get<std::uint64_t>();
    auto tag = [&](const char* key, const std::string& v) {
      if (!v.empty()) p.tags[key] = stored_tag_value(v, dialect);
    };
    tag("host", j["host"].get<std::string>());
    if (j["kind"] == "process") {
      p.measurement = "tally_process";
      tag("comm", j["comm"].get<std::string>());
      tag("cgroup", j["cgroup"].get<std::string>());
      p.tags["pid"] = std::to_string(j["pid"].get<std::uint64_t>());
      if (pid_uses[{p.ts_ns, j["pid"].get<std::uint64_t>()}] > 1) {
        p.tags["start_time"] = std::to_string(j["start_time_ns"].get<std::uint64_t>());
      }
      p.fields["cpu_ns"] = j["cpu_ns"].get<double>();
      p.fields["rss_bytes"] = j["rss_bytes"].get<double>();
      p.fields["cpu_pct"] = j["cpu_pct"].get<double>();
    } else if (j["kind"] == "host") {
      p.measurement = "tally_host";
      p.fields["busy_ns"] = j["busy_ns"].get<double>();
      p.fields["processes"] = j["processes"].get<double>();
      p.fields["ncpu"] = j["ncpu"].get<double>();
    } else {
      continue;
    }
    out.push_back(std::move(p));
  }
  return out;
}

inline std::string series_key(const std::string& metric,
                              const std::map<std::string, std::string>& tags) {
  std::string k = metric + "{";
  for (const auto& [key, value] : tags) k += key + "=" + nlohmann::json(value).dump() + ",";
  return k + "}";
}

}  // namespace tally::test
