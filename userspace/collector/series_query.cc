#include "collector/series_query.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/format.h>

#include "collector/host_points.h"
#include "collector/series_sum.h"

namespace tally::collector {

namespace {

constexpr std::uint64_t kNsPerS = 1'000'000'000;
constexpr std::uint64_t kMinuteNs = 60 * kNsPerS;
constexpr std::uint64_t kHourNs = 3600 * kNsPerS;
// Hour rollups are summed once the hour is over (housekeeper.h): the last
// two hours of a range come from minute rollups.
constexpr std::uint64_t kHourLagNs = 2 * kHourNs;
// Cells (groups times points) one answer may add up: 16 bytes each.
constexpr std::uint64_t kMaxCells = 8'000'000;

}  // namespace

SeriesSource source_for(const SeriesQuery& q, std::uint64_t step_ns) {
  if (q.source) return *q.source;
  // One host over a few hours: every sample, and the latest minute too.
  if (q.host && q.to - q.from <= SeriesQuery::kRawWindowNs) return SeriesSource::raw;
  if (step_ns % kHourNs == 0) return SeriesSource::hour;
  if (step_ns % kMinuteNs == 0) return SeriesSource::minute;
  return SeriesSource::raw;
}

namespace {

std::vector<std::optional<std::uint64_t>> cpu_cells(const SeriesCells& c,
                                                    const std::vector<bool>& has) {
  std::vector<std::optional<std::uint64_t>> out(has.size());
  for (std::size_t i = 0; i < has.size(); ++i) {
    if (has[i]) out[i] = c.cpu[i];
  }
  return out;
}

std::vector<std::optional<std::uint64_t>> rss_cells(const SeriesCells& c,
                                                    const std::vector<bool>& has) {
  std::vector<std::optional<std::uint64_t>> out(has.size());
  for (std::size_t i = 0; i < has.size(); ++i) {
    if (has[i]) out[i] = static_cast<std::uint64_t>(std::llround(std::max(0.0, c.rss[i])));
  }
  return out;
}

// The answer: the total, the `named` largest groups, and the rest of the
// total as `other` when anything is left.
void write_series(SeriesSum& sum, std::size_t named, const std::string& total_name,
                  SeriesRows& out) {
  const std::vector<bool>& has = sum.has_data();
  std::vector<SeriesGroup>& groups = sum.groups();
  SeriesCells rest = sum.total();
  for (std::size_t g = 0; g < named; ++g) {
    for (std::size_t i = 0; i < has.size(); ++i) {
      rest.cpu[i] -= std::min(rest.cpu[i], groups[g].cells.cpu[i]);
      rest.rss[i] -= groups[g].cells.rss[i];
    }
  }
  out.total.group = total_name;
  for (std::uint64_t c : sum.total().cpu) {
    out.total.cpu_ns_total = saturating_add(out.total.cpu_ns_total, c);
  }
  out.total.cpu_ns = cpu_cells(sum.total(), has);
  out.total.rss_bytes = rss_cells(sum.total(), has);
  for (std::size_t g = 0; g < named; ++g) {
    Series s;
    s.group = std::move(groups[g].group);
    s.host = std::move(groups[g].host);
    s.label = std::move(groups[g].label);
    s.cpu_ns_total = groups[g].cpu_ns_total;
    s.cpu_ns = cpu_cells(groups[g].cells, has);
    s.rss_bytes = rss_cells(groups[g].cells, has);
    out.named.push_back(std::move(s));
  }
  std::uint64_t rest_total = 0;
  for (std::uint64_t c : rest.cpu) rest_total = saturating_add(rest_total, c);
  if (rest_total > 0 || groups.size() > named) {
    Series s;
    s.group = "other";
    s.cpu_ns_total = rest_total;
    s.cpu_ns = cpu_cells(rest, has);
    s.rss_bytes = rss_cells(rest, has);
    out.other = std::move(s);
  }
}

}  // namespace

const char* source_name(SeriesSource s) {
  switch (s) {
    case SeriesSource::raw:
      return "raw";
    case SeriesSource::minute:
      return "rollup_1m";
    case SeriesSource::hour:
      return "rollup_1h";
  }
  return "?";
}

Result<SeriesReader> SeriesReader::prepare(sql::Database& db) {
  SeriesReader r;
  struct {
    sql::Statement* stmt;
    const char* sql;
  } table[] = {
      {&r.rollups_,
       "SELECT bucket_ns, other, group_id, cpu_ns, rss_sum, points FROM rollups"
       " WHERE step_s = ?1 AND host_id = ?2 AND kind = ?3 AND bucket_ns >= ?4 AND bucket_ns < ?5"},
      {&r.totals_,
       "SELECT bucket_ns, cpu_ns, rss_sum, points FROM rollups"
       " WHERE step_s = ?1 AND host_id = ?2 AND kind = 0 AND bucket_ns >= ?3 AND bucket_ns < ?4"},
      {&r.group_, "SELECT name, label FROM rollup_groups WHERE group_id = ?1"},
      {&r.hosts_, "SELECT host_id, host FROM series_hosts ORDER BY host"},
      {&r.host_, "SELECT host_id, host FROM series_hosts WHERE host = ?1"},
  };
  for (auto& [stmt, sql] : table) {
    auto prepared = sql::Statement::prepare(db, sql);
    if (!prepared.ok()) return prepared.error();
    *stmt = std::move(prepared).value();
  }
  auto points = HostPoints::prepare(db);
  if (!points.ok()) return points.error();
  r.points_ = std::move(points).value();
  return r;
}

Result<std::vector<SeriesReader::Host>> SeriesReader::hosts(const SeriesQuery& q) {
  std::vector<Host> out;
  auto use = q.host ? host_.use() : hosts_.use();
  if (q.host) use->bind(1, *q.host);
  for (;;) {
    auto row = use->step();
    if (!row.ok()) return row.error();
    if (!*row) break;
    out.push_back(Host{use->column_int(0), std::string(use->column_text(1))});
  }
  // A host with samples but no rollups yet is still read raw.
  if (q.host && out.empty()) out.push_back(Host{0, *q.host});
  return out;
}

Status SeriesReader::read_rollups(std::int64_t step_s, const SeriesQuery& q, std::uint64_t from,
                                  std::uint64_t to, const std::function<bool()>& out_of_time,
                                  const std::function<void(const RollupRow&)>& on_row) {
  if (from >= to) return ok_status();
  auto hosts = this->hosts(q);
  if (!hosts.ok()) return hosts.error();
  RollupRow r;  // one, reused: a day of a fleet is ~10^5 rows
  for (const Host& host : *hosts) {
    if (host.id == 0) continue;
    r.host = host.name;
    // The host's totals first: a group's RSS is divided by the host's
    // sample times in the step, complete by then.
    {
      auto use = totals_.use();
      use->bind(1, step_s).bind(2, host.id).bind(3, from).bind(4, to);
      r.kind = GroupKind::host;
      r.other = false;
      r.group_id = 0;
      for (;;) {
        auto row = use->step();
        if (!row.ok()) return row.error();
        if (!*row) break;
        if (out_of_time()) return Error("interrupted");
        r.bucket_ns = use->column_u64(0);
        r.cpu_ns = use->column_u64(1);
        r.rss_sum = use->column_u64(2);
        r.points = use->column_u64(3);
        on_row(r);
      }
    }
    if (q.group_by == GroupKind::host) continue;
    auto use = rollups_.use();
    use->bind(1, step_s).bind(2, host.id).bind(3, static_cast<int>(q.group_by)).bind(4, from);
    use->bind(5, to);
    r.kind = q.group_by;
    for (;;) {
      auto row = use->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      if (out_of_time()) return Error("interrupted");
      r.bucket_ns = use->column_u64(0);
      r.other = use->column_int(1) != 0;
      r.group_id = use->column_int(2);
      r.cpu_ns = use->column_u64(3);
      r.rss_sum = use->column_u64(4);
      r.points = use->column_u64(5);
      on_row(r);
    }
  }
  return ok_status();
}

Status SeriesReader::group_name(std::int64_t group_id, std::string& name, std::string& label) {
  auto use = group_.use();
  use->bind(1, group_id);
  auto row = use->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error::format("rollup group {} is missing", group_id);
  name = use->column_text(0);
  label = use->column_text(1);
  return ok_status();
}

Status SeriesReader::read_raw(const SeriesQuery& q, const std::function<bool()>& out_of_time,
                              const std::function<void(const RollupRow&)>& on_row) {
  auto hosts = this->hosts(q);
  if (!hosts.ok()) return hosts.error();
  for (const Host& h : *hosts) {
    GroupRollup rollup(q.step_ns, 0, 0);
    auto read = points_.read(h.name, q.from, q.to, out_of_time,
                             [&](const ProcessPoint& p) { rollup.add(h.name, p); });
    if (!read.ok()) return read.error();
    for (const RollupRow& r : rollup.take_rows()) {
      if (r.kind == GroupKind::host || r.kind == q.group_by) on_row(r);
    }
  }
  return ok_status();
}

Result<SeriesRows> SeriesReader::series(const SeriesQuery& q,
                                        const std::function<bool()>& out_of_time) {
  SeriesRows out;
  out.step_ns = std::max<std::uint64_t>(q.step_ns, 1);
  out.from = q.from - q.from % out.step_ns;
  const std::uint64_t span = q.to > out.from ? q.to - out.from : 0;
  out.points = static_cast<std::size_t>(span / out.step_ns + (span % out.step_ns != 0));
  if (out.points > kMaxPoints && !q.totals_only) {
    return Error::format("step: {} points from {} to {}, at most {}: ask for a larger step",
                         out.points, q.from, q.to, kMaxPoints);
  }
  const std::uint64_t to = out.from + out.points * out.step_ns;
  out.source = source_for(q, out.step_ns);
  if (out.source == SeriesSource::minute && out.step_ns % kMinuteNs != 0) {
    return Error::format("source: rollup_1m takes a step of whole minutes, not {} s",
                         out.step_ns / kNsPerS);
  }
  if (out.source == SeriesSource::hour && out.step_ns % kHourNs != 0) {
    return Error::format("source: rollup_1h takes a step of whole hours, not {} s",
                         out.step_ns / kNsPerS);
  }

  SeriesSum sum(q.group_by, out.from, out.step_ns, out.points, q.totals_only, kMaxCells);
  auto add = [&sum](const RollupRow& r) { sum.add(r); };
  Status read = ok_status();
  if (out.source == SeriesSource::raw) {
    read = read_raw(q, out_of_time, add);
  } else if (out.source == SeriesSource::minute) {
    read = read_rollups(60, q, out.from, to, out_of_time, add);
  } else {
    std::uint64_t split = q.to > kHourLagNs ? q.to - kHourLagNs : 0;
    split = std::clamp(split - split % out.step_ns, out.from, to);
    read = read_rollups(3600, q, out.from, split, out_of_time, add);
    if (read.ok()) read = read_rollups(60, q, split, to, out_of_time, add);
  }
  if (!read.ok()) return read.error();
  if (q.totals_only) out.points = 1;
  if (sum.too_many()) {
    return Error::format(
        "{}: more than {} groups over {} points: ask for one host, a larger step, or "
        "another grouping",
        q.totals_only ? "by" : "group_by", kMaxCells / std::max<std::size_t>(out.points, 1),
        out.points);
  }
  sum.finish();
  std::vector<SeriesGroup>& groups = sum.groups();
  const std::size_t named = std::min<std::size_t>(q.top, groups.size());
  for (std::size_t g = 0; g < named; ++g) {
    if (groups[g].group_id == 0) continue;
    TALLY_TRY(group_name(groups[g].group_id, groups[g].group, groups[g].label));
  }
  write_series(sum, named, q.host.value_or(""), out);
  return out;
}

}  // namespace tally::collector
