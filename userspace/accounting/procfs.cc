#include "accounting/procfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "tally/parse_number.h"

namespace tally::accounting::procfs {
namespace {

// Splits on single spaces; /proc/PID/stat after the comm is space-separated.
std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\n')) ++pos;
    std::size_t end = pos;
    while (end < s.size() && s[end] != ' ' && s[end] != '\n') ++end;
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

}  // namespace

Result<Stat> parse_stat(std::string_view text) {
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return Error("malformed /proc/PID/stat: no (comm)");
  }
  Stat st;
  st.comm = std::string(text.substr(open + 1, close - open - 1));
  // Fields after the comm start at (3) state.
  auto fields = split_spaces(text.substr(close + 1));
  // Index in `fields` of proc(5) field n is n - 3.
  if (fields.size() < 20) return Error("malformed /proc/PID/stat: too few fields");
  st.state = fields[0].empty() ? '?' : fields[0][0];
  if (!parse_decimal(fields[4 - 3], st.ppid) || !parse_decimal(fields[14 - 3], st.utime_ticks) ||
      !parse_decimal(fields[15 - 3], st.stime_ticks) ||
      !parse_decimal(fields[20 - 3], st.num_threads) ||
      !parse_decimal(fields[22 - 3], st.start_ticks)) {
    return Error("malformed /proc/PID/stat: bad number");
  }
  return st;
}

std::optional<std::uint64_t> parse_schedstat_runtime(std::string_view text) {
  auto fields = split_spaces(text);
  std::uint64_t v = 0;
  if (fields.empty() || !parse_decimal(fields[0], v)) return std::nullopt;
  return v;
}

std::optional<std::uint64_t> parse_statm_resident_pages(std::string_view text) {
  auto fields = split_spaces(text);
  std::uint64_t v = 0;
  if (fields.size() < 2 || !parse_decimal(fields[1], v)) return std::nullopt;
  return v;
}

std::string parse_cgroup(std::string_view text) {
  std::string_view v2, v1_cpu, v1_systemd;
  bool any_v1 = false;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto c1 = line.find(':');
    auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view id = line.substr(0, c1);
    std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string_view path = line.substr(c2 + 1);
    if (id == "0" && controllers.empty()) {
      v2 = path;
      continue;
    }
    any_v1 = true;
    // controllers is a comma list such as "cpu,cpuacct".
    std::string_view rest = controllers;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      const std::string_view controller = rest.substr(0, comma);
      if (controller == "cpu") v1_cpu = path;
      if (controller == "name=systemd") v1_systemd = path;
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  if (!any_v1) return std::string(v2);
  // A hybrid host: the unified tree names the process's place when systemd
  // or a runtime put it there; where it says only "/", the v1 hierarchies
  // still do (docs/container.md, "Which cgroup").
  for (const std::string_view p : {v2, v1_cpu, v1_systemd}) {
    if (!p.empty() && p != "/") return std::string(p);
  }
  return std::string(!v2.empty() ? v2 : v1_cpu);
}

std::string cmdline_for_display(std::string_view raw, std::size_t max_bytes) {
  bool cut = false;
  if (raw.size() > max_bytes) {
    // One NUL past the limit only ends the last argument; anything more is
    // text that does not fit.
    const std::string_view rest = raw.substr(max_bytes);
    cut = !(rest.size() == 1 && rest[0] == '\0');
    raw = raw.substr(0, max_bytes);
    // Never end inside a UTF-8 sequence: drop continuation bytes and the
    // lead byte they belong to.
    if (cut && !rest.empty() && (static_cast<unsigned char>(rest[0]) & 0xC0) == 0x80) {
      while (!raw.empty() && (static_cast<unsigned char>(raw.back()) & 0xC0) == 0x80) {
        raw.remove_suffix(1);
      }
      if (!raw.empty() && static_cast<unsigned char>(raw.back()) >= 0xC0) raw.remove_suffix(1);
    }
  }
  while (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  std::string out;
  out.reserve(raw.size() + (cut ? kCmdlineCutMarker.size() : 0));
  out.assign(raw);
  for (char& c : out) {
    if (c == '\0') c = ' ';
  }
  if (cut) out += kCmdlineCutMarker;
  return out;
}

std::uint64_t ns_per_tick() {
  static const std::uint64_t value = [] {
    long hz = sysconf(_SC_CLK_TCK);
    return static_cast<std::uint64_t>(1'000'000'000LL / (hz > 0 ? hz : 100));
  }();
  return value;
}

std::uint64_t page_size() {
  static const std::uint64_t value = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  return value;
}

bool read_small_file(const char* path, std::string& out, std::size_t max_bytes) {
  out.clear();
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  while (out.size() < max_bytes) {
    const std::size_t want = std::min(sizeof buf, max_bytes - out.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

namespace {
std::string proc_path(std::uint32_t pid, const char* file) {
  return fmt::format("/proc/{}/{}", pid, file);
}
}  // namespace

std::optional<Stat> read_stat(std::uint32_t pid) {
  std::string text;
  if (!read_small_file(proc_path(pid, "stat").c_str(), text)) return std::nullopt;
  auto st = parse_stat(text);
  if (!st.ok()) return std::nullopt;
  return std::move(st).value();
}

std::optional<std::uint64_t> read_rss_bytes(std::uint32_t pid) {
  std::string text;
  if (!read_small_file(proc_path(pid, "statm").c_str(), text)) return std::nullopt;
  auto pages = parse_statm_resident_pages(text);
  if (!pages) return std::nullopt;
  return *pages * page_size();
}

std::string read_comm(std::uint32_t pid) {
  std::string text;
  if (!read_small_file(proc_path(pid, "comm").c_str(), text)) return {};
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

std::string read_cmdline(std::uint32_t pid, std::size_t max_bytes) {
  std::string text;
  // Two bytes past the limit: the NUL that ends the last argument, and one
  // more to see that something was left out (cmdline_for_display).
  read_small_file(proc_path(pid, "cmdline").c_str(), text, max_bytes + 2);
  return text;
}

std::string read_cgroup_text(std::uint32_t pid) {
  std::string text;
  if (!read_small_file(proc_path(pid, "cgroup").c_str(), text)) return {};
  return text;
}

std::string read_cgroup(std::uint32_t pid) { return parse_cgroup(read_cgroup_text(pid)); }

bool is_same_incarnation(std::uint32_t pid, std::uint64_t start_ns) {
  auto st = read_stat(pid);
  return st && st->start_ticks == start_ns / ns_per_tick();
}

namespace {
std::optional<std::uint64_t> proc_stat_value(std::string_view key) {
  std::string text;
  if (!read_small_file("/proc/stat", text)) return std::nullopt;
  std::string_view rest = text;
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      std::uint64_t v = 0;
      if (parse_decimal(line.substr(key.size() + 1), v)) return v;
    }
  }
  return std::nullopt;
}
}  // namespace

std::uint64_t boot_time_epoch_ns() {
  static const std::uint64_t value = proc_stat_value("btime").value_or(0) * 1'000'000'000ULL;
  return value;
}

std::optional<std::uint64_t> read_forks_total() { return proc_stat_value("processes"); }

std::optional<std::uint64_t> parse_steal_ticks(std::string_view text) {
  // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
  if (text.substr(0, 4) != "cpu ") return std::nullopt;
  std::string_view rest = text.substr(4, text.find('\n') - 4);
  std::uint64_t v = 0;
  for (int field = 1; field <= 8; ++field) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const auto end = rest.find(' ');
    if (!parse_decimal(rest.substr(0, end), v)) return std::nullopt;
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  }
  return v;
}

std::optional<std::uint64_t> read_steal_ns() {
  std::string text;
  if (!read_small_file("/proc/stat", text, 4096)) return std::nullopt;
  auto ticks = parse_steal_ticks(text);
  if (!ticks) return std::nullopt;
  return *ticks * ns_per_tick();
}

std::optional<PressureTotals> parse_pressure(std::string_view text) {
  // some avg10=0.00 avg60=0.00 avg300=0.00 total=12345
  // full avg10=0.00 avg60=0.00 avg300=0.00 total=0
  PressureTotals out;
  bool some = false;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const auto at = line.find(" total=");
    if (at == std::string_view::npos) continue;
    std::uint64_t v = 0;
    if (!parse_decimal(line.substr(at + 7), v)) return std::nullopt;
    if (line.substr(0, 5) == "some ") {
      out.some_us = v;
      some = true;
    } else if (line.substr(0, 5) == "full ") {
      out.full_us = v;
    }
  }
  if (!some) return std::nullopt;
  return out;
}

std::optional<PressureTotals> read_pressure(const char* path) {
  std::string text;
  if (!read_small_file(path, text, 4096)) return std::nullopt;
  return parse_pressure(text);
}

}  // namespace tally::accounting::procfs
