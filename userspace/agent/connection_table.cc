#include "agent/connection_table.h"

#include <algorithm>
#include <utility>

#include "tally/log.h"

namespace tally::agent {

namespace {
// Under a flood of connections the evictions go on for as long as it does:
// one line when it starts, then a summary at most this often.
constexpr auto kReportEvery = std::chrono::minutes(1);
}  // namespace

ConnectionTable::ConnectionTable(std::string listener, Limits limits)
    : listener_(std::move(listener)), limits_(limits) {}

ConnectionTable::Id ConnectionTable::admit(const std::string& peer, Close close) {
  if (limits_.per_peer > 0 && count_of(peer) >= limits_.per_peer) {
    evict_from(peer, "per-client");
  } else if (limits_.total > 0 && entries_.size() >= limits_.total) {
    evict_from(heaviest_peer(), "total");
  }
  const Id id = next_id_++;
  entries_.push_back(Entry{id, peer, std::move(close)});
  return id;
}

void ConnectionTable::set_busy(Id id, bool busy) {
  for (auto& e : entries_) {
    if (e.id == id) e.busy = busy;
  }
}

void ConnectionTable::remove(Id id) {
  std::erase_if(entries_, [id](const Entry& e) { return e.id == id; });
}

bool ConnectionTable::close_oldest_idle() {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (!entries_[i].busy) {
      const std::string peer = entries_[i].peer;
      close_entry(i);
      ++evicted_;
      report(peer, "descriptor");
      return true;
    }
  }
  return false;
}

void ConnectionTable::close_all() {
  auto entries = std::move(entries_);
  entries_.clear();
  for (auto& e : entries) e.close();
}

std::size_t ConnectionTable::count_of(const std::string& peer) const {
  return static_cast<std::size_t>(std::count_if(entries_.begin(), entries_.end(),
                                                [&](const Entry& e) { return e.peer == peer; }));
}

std::string ConnectionTable::heaviest_peer() const {
  std::string heaviest;
  std::size_t most = 0;
  for (const auto& e : entries_) {
    const std::size_t n = count_of(e.peer);
    if (n > most) {
      most = n;
      heaviest = e.peer;
    }
  }
  return heaviest;
}

void ConnectionTable::evict_from(const std::string& peer, const char* bound) {
  std::size_t victim = entries_.size();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].peer != peer) continue;
    if (!entries_[i].busy) {
      victim = i;
      break;
    }
    if (victim == entries_.size()) victim = i;  // the oldest busy one, if none is idle
  }
  if (victim == entries_.size()) return;
  close_entry(victim);
  ++evicted_;
  report(peer, bound);
}

void ConnectionTable::close_entry(std::size_t index) {
  // Forgotten before the callback runs: the count drops now, and the
  // connection's own remove() later finds nothing.
  Close close = std::move(entries_[index].close);
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index));
  if (close) close();
}

void ConnectionTable::report(const std::string& peer, const char* bound) {
  ++evicted_unreported_;
  const auto now = std::chrono::steady_clock::now();
  if (reported_ && now - last_report_ < kReportEvery) return;
  if (!reported_) {
    log::warning(
        "{}: {} connections held ({} at most, {} per client); closing the oldest "
        "idle ones as new ones arrive ({} bound reached by {})",
        listener_, entries_.size() + 1, limits_.total, limits_.per_peer, bound, peer);
  } else {
    log::warning(
        "{}: {} more connections closed at the connection bounds since the last "
        "report (latest: {} bound, {})",
        listener_, evicted_unreported_, bound, peer);
  }
  reported_ = true;
  last_report_ = now;
  evicted_unreported_ = 0;
}

}  // namespace tally::agent
