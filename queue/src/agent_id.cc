#include "agent_id.h"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdint>

namespace tally::queue {

Result<std::string> make_agent_id() {
  std::array<std::uint8_t, 16> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    // Blocks only until the kernel's pool is initialised, once per boot.
    const ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("generate agent id: getrandom");
    }
    filled += static_cast<std::size_t>(n);
  }
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  std::string id;
  id.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id.push_back('-');
    id += fmt::format("{:02x}", bytes[i]);
  }
  return id;
}

}  // namespace tally::queue
