#include "agent/process_totals.h"

#include <algorithm>

namespace tally::agent {

void ProcessTotals::add_interval(std::span<const samples::ProcessSample> samples) {
  ++interval_;
  for (const auto& s : samples) {
    Entry& e = entries_[Key{s.pid, s.start_time_ns}];
    ProcessTotal& t = e.total;
    t.pid = s.pid;
    t.start_time_ns = s.start_time_ns;
    t.comm = s.comm;  // exec can rename a process: the latest name wins
    t.cpu_ns += s.cpu_ns;
    t.wait_ns += s.wait_ns;
    if (!s.exited) t.rss_bytes = s.rss_bytes;  // 0 after exit says nothing useful
    if (s.exited && !t.exited) e.exited_at = interval_;
    t.exited = t.exited || s.exited;
    e.last_seen = interval_;
  }
  // Without a scraper, exited processes would pile up forever.
  std::erase_if(entries_, [&](const auto& kv) {
    const Entry& e = kv.second;
    return e.total.exited && interval_ - e.exited_at >= options_.exited_keep_intervals;
  });
}

std::vector<ProcessTotal> ProcessTotals::scrape() {
  std::erase_if(entries_, [](const auto& kv) { return kv.second.shown_exited; });
  std::vector<Entry*> eligible;
  for (auto& [key, e] : entries_) {
    if (e.total.cpu_ns >= options_.min_cpu_ns) eligible.push_back(&e);
  }
  const auto by_total = [](const Entry* a, const Entry* b) {
    if (a->total.cpu_ns != b->total.cpu_ns) return a->total.cpu_ns > b->total.cpu_ns;
    return a->total.pid < b->total.pid;
  };
  const std::size_t n = std::min(options_.top, eligible.size());
  std::partial_sort(eligible.begin(), eligible.begin() + static_cast<std::ptrdiff_t>(n),
                    eligible.end(), by_total);
  omitted_ = eligible.size() - n;
  std::vector<ProcessTotal> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(eligible[i]->total);
  // Every exited process had its chance to be seen, shown or not (below
  // the bounds it would never be).
  for (auto& [key, e] : entries_) {
    if (e.total.exited) e.shown_exited = true;
  }
  return out;
}

void ProcessTotals::sweep(const std::function<bool(std::uint32_t, std::uint64_t)>& alive) {
  std::erase_if(entries_, [&](const auto& kv) {
    const Entry& e = kv.second;
    return !e.total.exited && interval_ - e.last_seen >= options_.stale_intervals &&
           !alive(e.total.pid, e.total.start_time_ns);
  });
}

}  // namespace tally::agent
