#include "accounting/cgroup_stats.h"

#include <vector>

#include "tally/parse_number.h"

namespace tally::accounting {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const auto at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

bool has_option(std::string_view options, std::string_view name) {
  for (const std::string_view o : split(options, ',')) {
    if (o == name) return true;
  }
  return false;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const auto d = [&](std::size_t k) { return s[i + k] >= '0' && s[i + k] <= '7'; };
      if (d(1) && d(2) && d(3)) {
        out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
        i += 3;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::string text;
  if (path.empty() || !procfs::read_small_file(path.c_str(), text, 16384)) return {};
  return text;
}

std::optional<std::uint64_t> read_number(const std::string& path) {
  std::string text = read_text(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::uint64_t v = 0;
  if (text.empty() || !parse_decimal(std::string_view(text), v)) return std::nullopt;
  return v;
}

}  // namespace

CgroupMounts parse_cgroup_mounts(std::string_view mountinfo) {
  CgroupMounts m;
  for (const std::string_view line : split(mountinfo, '\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
    const auto dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    const auto head = split(line.substr(0, dash), ' ');
    const auto tail = split(line.substr(dash + 3), ' ');
    if (head.size() < 5 || tail.size() < 3) continue;
    const std::string root = unescape(head[3]);
    const std::string point = unescape(head[4]);
    if (tail[0] == "cgroup2") {
      if (m.v2.empty()) {
        m.v2 = point;
        m.v2_root = root;
      }
    } else if (tail[0] == "cgroup") {
      if (has_option(tail[2], "cpu") && m.v1_cpu.empty()) {
        m.v1_cpu = point;
        m.v1_cpu_root = root;
      }
      if (has_option(tail[2], "cpuacct") && m.v1_cpuacct.empty()) {
        m.v1_cpuacct = point;
        m.v1_cpuacct_root = root;
      }
    }
  }
  return m;
}

CgroupMounts read_cgroup_mounts() {
  std::string text;
  if (!procfs::read_small_file("/proc/self/mountinfo", text)) return {};
  return parse_cgroup_mounts(text);
}

CgroupPaths parse_cgroup_paths(std::string_view text) {
  CgroupPaths p;
  for (const std::string_view line : split(text, '\n')) {
    const auto c1 = line.find(':');
    const auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    const std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    const std::string path(line.substr(c2 + 1));
    if (line.substr(0, c1) == "0" && controllers.empty()) {
      p.v2 = path;
      continue;
    }
    if (has_option(controllers, "cpu")) p.v1_cpu = path;
    if (has_option(controllers, "cpuacct")) p.v1_cpuacct = path;
  }
  return p;
}

std::string cgroup_dir(const std::string& mount, const std::string& root, const std::string& path) {
  if (mount.empty() || path.empty() || path.find("/..") != std::string::npos) return {};
  if (root == "/") return path == "/" ? mount : mount + path;
  // A namespaced mount shows root's subtree only.
  if (path == root) return mount;
  if (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
      path[root.size()] == '/') {
    return mount + path.substr(root.size());
  }
  return {};
}

std::optional<std::uint64_t> flat_keyed_value(std::string_view text, std::string_view key) {
  for (const std::string_view line : split(text, '\n')) {
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      std::uint64_t v = 0;
      if (parse_decimal(line.substr(key.size() + 1), v)) return v;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<double> parse_cpu_max(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::string_view quota = text.substr(0, space);
  std::uint64_t period = 0;
  if (!parse_decimal(text.substr(space + 1), period) || period == 0) return std::nullopt;
  if (quota == "max") return 0.0;
  std::uint64_t q = 0;
  if (!parse_decimal(quota, q)) return std::nullopt;
  return static_cast<double>(q) / static_cast<double>(period);
}

std::string CgroupPaths::identity() const {
  for (const std::string* p : {&v2, &v1_cpu}) {
    if (!p->empty() && *p != "/") return *p;
  }
  return !v2.empty() ? v2 : v1_cpu;
}

CgroupCpu read_cgroup_cpu(const CgroupMounts& mounts, const CgroupPaths& paths) {
  CgroupCpu out;
  // Only the hierarchies that place the process in the cgroup reported: on
  // a hybrid whose unified tree holds everything at "/", v2's root figures
  // are the whole host's, not this cgroup's.
  const std::string id = paths.identity();
  const auto in = [&](const std::string& path) { return !id.empty() && path == id; };
  const std::string v2 = in(paths.v2) ? cgroup_dir(mounts.v2, mounts.v2_root, paths.v2) : "";
  if (!v2.empty()) {
    const std::string stat = read_text(v2 + "/cpu.stat");
    if (auto usage = flat_keyed_value(stat, "usage_usec")) out.usage_ns = *usage * 1000;
    // With the cpu controller enabled for this cgroup only.
    if (auto periods = flat_keyed_value(stat, "nr_periods")) {
      out.throttling_known = true;
      out.nr_periods = *periods;
      out.nr_throttled = flat_keyed_value(stat, "nr_throttled").value_or(0);
      out.throttled_ns = flat_keyed_value(stat, "throttled_usec").value_or(0) * 1000;
      if (auto limit = parse_cpu_max(read_text(v2 + "/cpu.max"))) out.limit_cpus = *limit;
    }
    out.pressure = procfs::parse_pressure(read_text(v2 + "/cpu.pressure"));
  }
  if (!out.throttling_known) {
    const std::string cpu =
        in(paths.v1_cpu) ? cgroup_dir(mounts.v1_cpu, mounts.v1_cpu_root, paths.v1_cpu) : "";
    if (!cpu.empty()) {
      const std::string stat = read_text(cpu + "/cpu.stat");
      if (auto periods = flat_keyed_value(stat, "nr_periods")) {
        out.throttling_known = true;
        out.nr_periods = *periods;
        out.nr_throttled = flat_keyed_value(stat, "nr_throttled").value_or(0);
        out.throttled_ns = flat_keyed_value(stat, "throttled_time").value_or(0);
      }
      // cfs_quota_us is -1 without a limit: it does not parse as unsigned.
      const auto quota = read_number(cpu + "/cpu.cfs_quota_us");
      const auto period = read_number(cpu + "/cpu.cfs_period_us");
      if (quota && period && *period > 0) {
        out.limit_cpus = static_cast<double>(*quota) / static_cast<double>(*period);
      }
    }
  }
  if (!out.usage_ns) {
    const std::string acct =
        in(paths.v1_cpuacct)
            ? cgroup_dir(mounts.v1_cpuacct, mounts.v1_cpuacct_root, paths.v1_cpuacct)
            : "";
    if (!acct.empty()) out.usage_ns = read_number(acct + "/cpuacct.usage");
  }
  return out;
}

}  // namespace tally::accounting
