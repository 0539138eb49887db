// The counters of the remote write sink, and the file that keeps them across
// restarts of tallyd.
//
// Prometheus wants counters that only grow; tally's samples are deltas per
// interval. The sink adds them up per series, and the sums must survive a
// restart: a counter that came back from 0 would look like a reset, and the
// whole new value would count as an increase. So after every batch the sink
// is done with (acknowledged or dead-lettered) the sums are written to a file
// beside the outbox, before the outbox hears of it.
//
// The file holds the sums after that batch and before it: a crash between
// writing the file and the outbox's ack leaves the batch to be sent again,
// and it must be sent again from the sums it was first encoded from, so
// that the server gets the same values and not a batch counted twice.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tally/result.h"

namespace tally::shipping {

struct SeriesCounter {
  std::uint64_t total = 0;    // ns (time) or a count
  std::uint64_t sent_ms = 0;  // timestamp of the last sample sent; 0 never
  std::uint64_t seen_ns = 0;  // the last interval that touched it
  friend bool operator==(const SeriesCounter&, const SeriesCounter&) = default;
};

// Counters by series, the series named by a 64-bit FNV-1a hash of its
// name and labels (series_hash): a sorted vector, so that the copy every
// encode makes (a batch is encoded from the counters before it, and only
// an acknowledgement moves them on) is one allocation, not one per series.
// Two series of one host colliding would take 2^32 series to be likely.
class CounterTable {
 public:
  using Entry = std::pair<std::uint64_t, SeriesCounter>;
  // The counter of `hash`, created at zero if new.
  SeriesCounter& at(std::uint64_t hash);
  SeriesCounter* find(std::uint64_t hash);
  template <typename Pred>
  void erase_if(Pred pred) {
    std::erase_if(entries_, [&](const Entry& e) { return pred(e.second); });
  }
  const std::vector<Entry>& entries() const { return entries_; }
  // Entries in any order; sorted here.
  void assign(std::vector<Entry> entries);
  std::size_t size() const { return entries_.size(); }
  friend bool operator==(const CounterTable&, const CounterTable&) = default;

 private:
  std::vector<Entry> entries_;  // by hash
};

// FNV-1a, 64 bits: stable across builds, so the counter file outlives an
// upgrade.
std::uint64_t series_hash(std::string_view key);

struct RemoteWriteState {
  std::uint64_t after_seq = 0;  // the sums include every batch up to this seq
  // Process series are kept apart: they end with their process, the others
  // live on while idle.
  CounterTable processes;
  CounterTable series;
  friend bool operator==(const RemoteWriteState&, const RemoteWriteState&) = default;
};

struct RemoteWriteStates {
  RemoteWriteState current;
  std::optional<RemoteWriteState> previous;  // before the batch `current` last added
};

// JSON text of the states, and back; the error says what is wrong where.
std::string serialize(const RemoteWriteStates& states);
Result<RemoteWriteStates> parse_remote_write_states(std::string_view text);

class RemoteWriteStateFile {
 public:
  explicit RemoteWriteStateFile(std::filesystem::path path) : path_(std::move(path)) {}
  const std::filesystem::path& path() const { return path_; }
  // nullopt when there is no file yet; an error for one that cannot be read.
  Result<std::optional<RemoteWriteStates>> load() const;
  // Durable on return (written beside, synced, renamed over, directory synced).
  Status save(const RemoteWriteStates& states) const;

 private:
  std::filesystem::path path_;
};

}  // namespace tally::shipping
