#include "agent/start_up_pages.h"

#include <sys/mman.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace tally::agent {

namespace {

struct Mapping {
  std::uintptr_t start = 0, end = 0;
  bool candidate = false;  // private, read-only, a file
  std::uint64_t rss_kib = 0;
  std::uint64_t anonymous_kib = 0;
};

// "7f…-7f… r-xp 00001000 fd:01 1234   /usr/lib/…/libc.so.6"
bool parse_header(const std::string& line, Mapping& m) {
  unsigned long long start = 0, end = 0, inode = 0;
  char perms[5] = {};
  int path_at = 0;
  if (std::sscanf(line.c_str(), "%llx-%llx %4s %*s %*s %llu %n", &start, &end, perms, &inode,
                  &path_at) < 4) {
    return false;
  }
  m = Mapping{};
  m.start = static_cast<std::uintptr_t>(start);
  m.end = static_cast<std::uintptr_t>(end);
  const bool is_file = inode != 0 && path_at > 0 &&
                       static_cast<std::size_t>(path_at) < line.size() && line[path_at] == '/';
  m.candidate = is_file && perms[0] == 'r' && perms[1] == '-' && perms[3] == 'p';
  return true;
}

bool field_kib(const std::string& line, const char* name, std::uint64_t& out) {
  const std::size_t n = std::char_traits<char>::length(name);
  if (line.compare(0, n, name) != 0) return false;
  out = std::strtoull(line.c_str() + n, nullptr, 10);
  return true;
}

}  // namespace

Result<DroppedPages> drop_start_up_pages() {
  // Read everything first: madvise while reading would change the file.
  std::ifstream smaps("/proc/self/smaps");
  if (!smaps) return Error("read /proc/self/smaps: cannot open");
  std::vector<Mapping> mappings;
  std::string line;
  while (std::getline(smaps, line)) {
    Mapping m;
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') < line.find(' ') && parse_header(line, m)) {
      mappings.push_back(m);
    } else if (!mappings.empty()) {
      field_kib(line, "Rss:", mappings.back().rss_kib) ||
          field_kib(line, "Anonymous:", mappings.back().anonymous_kib);
    }
  }
  DroppedPages dropped;
  for (const Mapping& m : mappings) {
    if (!m.candidate || m.anonymous_kib != 0 || m.rss_kib == 0) continue;
    if (madvise(reinterpret_cast<void*>(m.start), m.end - m.start, MADV_DONTNEED) != 0) {
      return Error::format("madvise(MADV_DONTNEED) on {:#x}-{:#x}: {}", m.start, m.end,
                           std::strerror(errno));
    }
    ++dropped.mappings;
    dropped.bytes += m.rss_kib * 1024;
  }
  return dropped;
}

}  // namespace tally::agent
