#include "shipping/interval_rollup.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include <re2/re2.h>

namespace tally::shipping {

const char* group_field_name(GroupRule::Field field) {
  switch (field) {
    case GroupRule::Field::comm:
      return "comm";
    case GroupRule::Field::cmdline:
      return "cmdline";
    case GroupRule::Field::cgroup:
      return "cgroup";
  }
  return "?";
}

GroupMatcher::GroupMatcher() = default;
GroupMatcher::~GroupMatcher() = default;
GroupMatcher::GroupMatcher(GroupMatcher&&) noexcept = default;
GroupMatcher& GroupMatcher::operator=(GroupMatcher&&) noexcept = default;

Result<GroupMatcher> GroupMatcher::compile(std::vector<GroupRule> rules) {
  GroupMatcher m;
  RE2::Options options;
  options.set_log_errors(false);
  // Bounds the compiled program, so that a huge pattern is an error at
  // start-up rather than memory spent on every match.
  options.set_max_mem(1 << 20);
  for (std::size_t i = 0; i < rules.size(); ++i) {
    auto re = std::make_unique<RE2>(rules[i].pattern, options);
    if (!re->ok()) {
      return Error::format("group {} (\"{}\"): {} pattern \"{}\" does not compile: {}", i + 1,
                           rules[i].name, group_field_name(rules[i].field), rules[i].pattern,
                           re->error());
    }
    m.compiled_.push_back(std::move(re));
  }
  m.rules_ = std::move(rules);
  return m;
}

std::string_view GroupMatcher::group_of(const samples::ProcessSample& p) const {
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const std::string& text = rules_[i].field == GroupRule::Field::comm      ? p.comm
                              : rules_[i].field == GroupRule::Field::cmdline ? p.cmdline
                                                                             : p.cgroup;
    if (RE2::PartialMatch(text, *compiled_[i])) return rules_[i].name;
  }
  return kUnmatched;
}

void Usage::add(const samples::ProcessSample& p) {
  cpu_ns += p.cpu_ns;
  wait_ns += p.wait_ns;
  rss_bytes += p.rss_bytes;
  ++processes;
}

void Usage::add(const Usage& other) {
  cpu_ns += other.cpu_ns;
  wait_ns += other.wait_ns;
  rss_bytes += other.rss_bytes;
  processes += other.processes;
}

namespace {

using samples::ProcessSample;

// A process's start time is the boot time (/proc/stat's btime, in whole
// seconds) plus its start in ns since boot: up to a second early. A process
// must have started this much before its interval to count as older than
// it, so that no process born in the interval passes for an old one. A
// clock step (settimeofday) can still move every start time; that changes
// which processes get a series, never the totals.
constexpr std::uint64_t kStartTimeSlackNs = 2'000'000'000;

// Started before the interval did (so not one of a fork storm's).
bool lived_through_interval(const ProcessSample& p) {
  return p.start_time_ns + p.interval_ns + kStartTimeSlackNs <= p.ts_ns;
}

// Which of the interval's processes get a series: all, or the top_n by CPU
// (ties by pid, then start time, so the choice never depends on order) plus
// those at or above min_cpu_pct, of those that lived through the whole
// interval. With one_per_pid, of two lines with one
// pid only the later-started (the live one) can be chosen.
std::vector<bool> choose(std::span<const samples::Sample> samples,
                         const std::vector<std::uint32_t>& lines, const RollupOptions& o) {
  const auto process = [&](std::uint32_t i) -> const ProcessSample& {
    return std::get<ProcessSample>(samples[i]);
  };
  std::vector<bool> eligible(lines.size(), true);
  if (o.one_per_pid) {
    std::map<std::uint32_t, std::size_t> newest;  // pid -> position in lines
    for (std::size_t k = 0; k < lines.size(); ++k) {
      const ProcessSample& p = process(lines[k]);
      auto [it, fresh] = newest.emplace(p.pid, k);
      if (fresh) continue;
      const ProcessSample& q = process(lines[it->second]);
      if (p.start_time_ns > q.start_time_ns) {
        eligible[it->second] = false;
        it->second = k;
      } else {
        eligible[k] = false;
      }
    }
  }
  std::vector<bool> chosen(lines.size(), false);
  if (!o.top) return eligible;
  // A process younger than the interval has no series of its own: a fork
  // storm would otherwise put fresh pids in the top every interval, each a
  // new series. Its CPU is in the remainder and in its groups.
  for (std::size_t k = 0; k < lines.size(); ++k) {
    if (!lived_through_interval(process(lines[k]))) eligible[k] = false;
  }
  std::vector<std::size_t> order;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    if (eligible[k]) order.push_back(k);
  }
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const ProcessSample& p = process(lines[a]);
    const ProcessSample& q = process(lines[b]);
    if (p.cpu_ns != q.cpu_ns) return p.cpu_ns > q.cpu_ns;
    if (p.pid != q.pid) return p.pid < q.pid;
    return p.start_time_ns < q.start_time_ns;
  });
  for (std::size_t r = 0; r < order.size(); ++r) {
    const ProcessSample& p = process(lines[order[r]]);
    const bool busy = o.min_cpu_pct > 0 && p.cpu_pct >= o.min_cpu_pct;
    if (r < o.top_n || busy) chosen[order[r]] = true;
  }
  return chosen;
}

// One dimension's groups: the max_groups busiest by name, the rest summed.
// With `established`, only the groups it holds may have a name of their own.
void add_dimension(std::string_view by, std::map<std::string, GroupRollup>& named,
                   std::uint32_t max_groups, const std::set<std::string>* established,
                   std::vector<GroupRollup>& out) {
  std::vector<GroupRollup*> order;
  order.reserve(named.size());
  std::vector<GroupRollup*> young;
  for (auto& [name, g] : named) {
    (established == nullptr || established->count(name) ? order : young).push_back(&g);
  }
  std::stable_sort(order.begin(), order.end(), [](const GroupRollup* a, const GroupRollup* b) {
    return a->total.cpu_ns > b->total.cpu_ns;  // stable: ties stay in name order
  });
  GroupRollup more{by, std::string(kMoreGroups), {}, {}};
  std::vector<GroupRollup> kept;
  order.insert(order.end(), young.begin(), young.end());
  const std::size_t named_slots = std::min<std::size_t>(max_groups, order.size() - young.size());
  for (std::size_t r = 0; r < order.size(); ++r) {
    if (r < named_slots) {
      kept.push_back(std::move(*order[r]));
      continue;
    }
    const GroupRollup& g = *order[r];
    more.total.add(g.total);
    more.other.add(g.other);
  }
  std::sort(kept.begin(), kept.end(),
            [](const GroupRollup& a, const GroupRollup& b) { return a.name < b.name; });
  for (auto& g : kept) out.push_back(std::move(g));
  if (more.total.processes > 0) out.push_back(std::move(more));
}

IntervalRollup roll_up_interval(std::span<const samples::Sample> samples,
                                const std::vector<std::uint32_t>& lines,
                                const samples::HostSample* host, std::uint32_t host_index,
                                const RollupOptions& o) {
  IntervalRollup r;
  r.lines = lines;
  r.complete = host != nullptr && host->processes == lines.size();
  if (host != nullptr) {
    r.ts_ns = host->ts_ns;
    r.interval_ns = host->interval_ns;
    r.host = host->host;
    r.has_host = true;
    r.host_index = host_index;
  } else if (!lines.empty()) {
    const auto& p = std::get<ProcessSample>(samples[lines.front()]);
    r.ts_ns = p.ts_ns;
    r.interval_ns = p.interval_ns;
    r.host = p.host;
  }
  if (!r.complete) {
    // Without the whole interval neither the choice nor the remainder is
    // exact: every line present is shipped, and nothing is derived.
    r.shipped = lines;
    for (std::uint32_t i : lines) r.all.add(std::get<ProcessSample>(samples[i]));
    return r;
  }
  const std::vector<bool> chosen = choose(samples, lines, o);
  std::map<std::string, GroupRollup> by_cgroup, by_comm, by_rule;
  // With top, a cgroup or comm has a series of its own only once a process
  // of it lived through an interval: a storm of new programs or containers
  // is summed into kMoreGroups instead of making series. The [[group]]
  // names are the operator's, a fixed set.
  std::set<std::string> old_cgroups, old_comms;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    const auto& p = std::get<ProcessSample>(samples[lines[k]]);
    const std::string_view cgroup = p.cgroup.empty() ? kNoName : std::string_view(p.cgroup);
    const std::string_view comm = p.comm.empty() ? kNoName : std::string_view(p.comm);
    if (lived_through_interval(p)) {
      old_cgroups.emplace(cgroup);
      old_comms.emplace(comm);
    }
    r.all.add(p);
    if (chosen[k]) {
      r.shipped.push_back(lines[k]);
    } else {
      r.other.add(p);
    }
    const auto account = [&](std::map<std::string, GroupRollup>& dim, std::string_view by,
                             std::string_view name) {
      auto it = dim.find(std::string(name));
      if (it == dim.end()) {
        it = dim.emplace(std::string(name), GroupRollup{by, std::string(name), {}, {}}).first;
      }
      it->second.total.add(p);
      if (!chosen[k]) it->second.other.add(p);
    };
    account(by_cgroup, "cgroup", cgroup);
    account(by_comm, "comm", comm);
    if (o.groups != nullptr && !o.groups->empty()) account(by_rule, "group", o.groups->group_of(p));
  }
  add_dimension("cgroup", by_cgroup, o.max_groups, o.top ? &old_cgroups : nullptr, r.groups);
  add_dimension("comm", by_comm, o.max_groups, o.top ? &old_comms : nullptr, r.groups);
  add_dimension("group", by_rule, o.max_groups, nullptr, r.groups);
  return r;
}

}  // namespace

std::vector<IntervalRollup> roll_up(std::span<const samples::Sample> samples,
                                    const RollupOptions& options) {
  std::vector<IntervalRollup> out;
  std::vector<std::uint32_t> pending;  // process lines not yet closed by a host line
  std::uint64_t pending_ts = 0;
  for (std::uint32_t i = 0; i < samples.size(); ++i) {
    if (const auto* p = std::get_if<ProcessSample>(&samples[i])) {
      if (!pending.empty() && p->ts_ns != pending_ts) {
        // A new interval began without a host line for the last: defensive,
        // the sampler always writes one.
        out.push_back(roll_up_interval(samples, pending, nullptr, 0, options));
        pending.clear();
      }
      pending_ts = p->ts_ns;
      pending.push_back(i);
    } else if (const auto* h = std::get_if<samples::HostSample>(&samples[i])) {
      if (!pending.empty() && pending_ts != h->ts_ns) {
        out.push_back(roll_up_interval(samples, pending, nullptr, 0, options));
        pending.clear();
      }
      out.push_back(roll_up_interval(samples, pending, h, i, options));
      pending.clear();
    }
  }
  if (!pending.empty()) out.push_back(roll_up_interval(samples, pending, nullptr, 0, options));
  return out;
}

RollupPlan plan_rollups(std::span<const samples::Sample> samples, const RollupOptions& options) {
  RollupPlan plan;
  plan.rollups = roll_up(samples, options);
  plan.sent.assign(samples.size(), true);
  plan.at_host.assign(samples.size(), nullptr);
  for (const IntervalRollup& r : plan.rollups) {
    std::size_t s = 0;
    for (std::uint32_t i : r.lines) {
      const bool shipped = s < r.shipped.size() && r.shipped[s] == i;
      if (shipped) ++s;
      plan.sent[i] = shipped;
    }
    if (r.has_host) plan.at_host[r.host_index] = &r;
  }
  return plan;
}

}  // namespace tally::shipping
