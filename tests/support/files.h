// Test helper: what a directory holds, and a filesystem filled to the brim.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

namespace tally::test {

// Every file in `dir`, by name, with its bytes.
inline std::map<std::string, std::string> snapshot_files(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    files[entry.path().filename().string()] =
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return files;
}

// Writes zeros to `filler` until its filesystem has no byte left (in
// chunks of 64 KiB, then smaller, down to one byte). False if it cannot be
// created.
inline bool fill_filesystem(const std::filesystem::path& filler) {
  const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const std::string chunk(64 * 1024, '\0');
  for (std::size_t size = chunk.size(); size > 0; size /= 2) {
    while (::write(fd, chunk.data(), size) == static_cast<ssize_t>(size)) {
    }
  }
  ::close(fd);
  return true;
}

}  // namespace tally::test
