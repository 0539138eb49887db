#include "collector/series_format.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tally::collector {

namespace {

using ordered_json = nlohmann::ordered_json;

ordered_json values(const std::vector<std::optional<std::uint64_t>>& v) {
  ordered_json out = ordered_json::array();
  for (const auto& x : v) {
    if (x) {
      out.push_back(*x);
    } else {
      out.push_back(nullptr);
    }
  }
  return out;
}

ordered_json series_object(const Series& s) {
  ordered_json j{{"name", s.group}};
  if (!s.host.empty()) j["host"] = s.host;
  if (!s.label.empty()) j["comm"] = s.label;
  j["cpu_ns_total"] = s.cpu_ns_total;
  j["cpu_ns"] = values(s.cpu_ns);
  j["rss_bytes"] = values(s.rss_bytes);
  return j;
}

// RFC 4180: quoted when it holds a comma, quote or line break.
void append_csv_field(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == field.npos) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

const char* group_kind_name(GroupKind kind) {
  switch (kind) {
    case GroupKind::host:
      return "host";
    case GroupKind::comm:
      return "comm";
    case GroupKind::cgroup:
      return "cgroup";
    case GroupKind::process:
      return "process";
  }
  return "?";
}

std::string series_json(const SeriesQuery& q, const SeriesRows& rows) {
  ordered_json named = ordered_json::array();
  for (const Series& s : rows.named) named.push_back(series_object(s));
  ordered_json j{{"source", source_name(rows.source)},
                 {"host", q.host ? ordered_json(*q.host) : ordered_json(nullptr)},
                 {"group_by", group_kind_name(q.group_by)},
                 {"from", rows.from},
                 {"step_ns", rows.step_ns},
                 {"points", rows.points},
                 {"total", series_object(rows.total)},
                 {"series", std::move(named)},
                 {"other", rows.other ? series_object(*rows.other) : ordered_json(nullptr)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string series_csv(const SeriesRows& rows) {
  // `series` says which rows are the total, a named group, or the rest:
  // a group may be called "total" or "other".
  std::string out = "time_ns,series,name,host,comm,cpu_ns,cpu_cores,rss_bytes\r\n";
  auto write = [&](const Series& s, std::string_view series, std::string_view name) {
    for (std::size_t i = 0; i < rows.points; ++i) {
      out += fmt::format("{},{},", rows.from + i * rows.step_ns, series);
      append_csv_field(out, name);
      out.push_back(',');
      append_csv_field(out, s.host);
      out.push_back(',');
      append_csv_field(out, s.label);
      if (i < s.cpu_ns.size() && s.cpu_ns[i]) {
        out += fmt::format(",{},{:.6f},{}\r\n", *s.cpu_ns[i],
                           static_cast<double>(*s.cpu_ns[i]) / static_cast<double>(rows.step_ns),
                           s.rss_bytes[i].value_or(0));
      } else {
        out += ",,,\r\n";  // no data: a gap
      }
    }
  };
  write(rows.total, "total", rows.total.group);
  for (const Series& s : rows.named) write(s, "group", s.group);
  if (rows.other) write(*rows.other, "other", "");
  return out;
}

}  // namespace tally::collector
