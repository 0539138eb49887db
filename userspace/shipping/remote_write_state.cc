#include "shipping/remote_write_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tally/fd.h"

namespace tally::shipping {

namespace {

using nlohmann::json;

constexpr int kFormatVersion = 1;
// A file larger than this is not one tallyd wrote (a state is bounded by
// the live processes and the bounded groups): refuse before reading it.
constexpr std::uintmax_t kMaxFileBytes = 256ull << 20;

json to_json(const CounterTable& counters) {
  json out = json::array();
  for (const auto& [hash, c] : counters.entries()) {
    out.push_back(json::array({hash, c.total, c.sent_ms, c.seen_ns}));
  }
  return out;
}

CounterTable counters_from_json(const json& j) {
  std::vector<CounterTable::Entry> entries;
  for (const json& c : j) {
    if (!c.is_array() || c.size() != 4) throw std::runtime_error("a series entry is not 4 values");
    entries.emplace_back(c[0].get<std::uint64_t>(),
                         SeriesCounter{c[1].get<std::uint64_t>(), c[2].get<std::uint64_t>(),
                                       c[3].get<std::uint64_t>()});
  }
  CounterTable table;
  table.assign(std::move(entries));
  return table;
}

json to_json(const RemoteWriteState& s) {
  return json{{"after_seq", s.after_seq},
              {"processes", to_json(s.processes)},
              {"series", to_json(s.series)}};
}

RemoteWriteState from_json(const json& j) {
  RemoteWriteState s;
  s.after_seq = j.at("after_seq").get<std::uint64_t>();
  s.processes = counters_from_json(j.at("processes"));
  s.series = counters_from_json(j.at("series"));
  return s;
}

Status write_all(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::format("write {}: {}", path.string(), std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

}  // namespace

SeriesCounter& CounterTable::at(std::uint64_t hash) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), hash,
                             [](const Entry& e, std::uint64_t h) { return e.first < h; });
  if (it == entries_.end() || it->first != hash) it = entries_.insert(it, Entry{hash, {}});
  return it->second;
}

SeriesCounter* CounterTable::find(std::uint64_t hash) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), hash,
                             [](const Entry& e, std::uint64_t h) { return e.first < h; });
  return it == entries_.end() || it->first != hash ? nullptr : &it->second;
}

void CounterTable::assign(std::vector<Entry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.first < b.first; });
  // A file with one hash twice keeps the first.
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const Entry& a, const Entry& b) { return a.first == b.first; }),
                entries.end());
  entries_ = std::move(entries);
}

std::uint64_t series_hash(std::string_view key) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string serialize(const RemoteWriteStates& states) {
  json j{{"version", kFormatVersion}, {"current", to_json(states.current)}};
  if (states.previous) j["previous"] = to_json(*states.previous);
  // Keys and labels were made valid UTF-8 when they were built; replace
  // rather than throw should one not be.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<RemoteWriteStates> parse_remote_write_states(std::string_view text) {
  try {
    const json j = json::parse(text);
    if (j.at("version").get<int>() != kFormatVersion) {
      return Error::format("version {} (this tallyd reads {})", j.at("version").dump(),
                           kFormatVersion);
    }
    RemoteWriteStates states;
    states.current = from_json(j.at("current"));
    if (j.contains("previous")) states.previous = from_json(j.at("previous"));
    return states;
  } catch (const std::exception& e) {
    return Error(e.what());
  }
}

Result<std::optional<RemoteWriteStates>> RemoteWriteStateFile::load() const {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path_, ec);
  if (ec == std::errc::no_such_file_or_directory) return std::optional<RemoteWriteStates>();
  if (ec) return Error::format("{}: {}", path_.string(), ec.message());
  if (size > kMaxFileBytes) {
    return Error::format("{}: {} bytes, more than a counter file can be", path_.string(), size);
  }
  std::ifstream in(path_, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return Error::format("{}: cannot be read", path_.string());
  auto states = parse_remote_write_states(text.str());
  if (!states.ok()) return Error::format("{}: {}", path_.string(), states.error().message());
  return std::optional<RemoteWriteStates>(std::move(*states));
}

Status RemoteWriteStateFile::save(const RemoteWriteStates& states) const {
  const std::filesystem::path tmp = path_.string() + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd.valid()) return Error::format("create {}: {}", tmp.string(), std::strerror(errno));
  if (auto st = write_all(fd.get(), serialize(states), tmp); !st.ok()) return st;
  if (::fdatasync(fd.get()) != 0) {
    return Error::format("sync {}: {}", tmp.string(), std::strerror(errno));
  }
  fd.reset();
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return Error::format("rename {} to {}: {}", tmp.string(), path_.string(), std::strerror(errno));
  }
  const std::filesystem::path dir = path_.has_parent_path() ? path_.parent_path() : ".";
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) ::fsync(dfd.get());  // the rename survives a power cut
  return {};
}

}  // namespace tally::shipping
