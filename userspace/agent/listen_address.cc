#include "agent/listen_address.h"

#include <arpa/inet.h>

#include "tally/parse_number.h"

namespace tally::agent {

Result<ListenAddress> parse_listen_address(std::string_view text) {
  const auto bad = [&] {
    return Error::format(
        "\"{}\" is not IP:PORT (accepted: an IPv4 address or a bracketed IPv6 address, a colon, "
        "and a port 0 to 65535, e.g. 127.0.0.1:9464)",
        text);
  };
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return bad();
  std::string_view ip = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  bool v6 = false;
  if (ip.front() == '[') {
    if (ip.size() < 3 || ip.back() != ']') return bad();
    ip = ip.substr(1, ip.size() - 2);
    v6 = true;
  }
  unsigned port = 0;
  if (!parse_decimal(port_text, port) || port > 65535) return bad();
  // inet_pton is pure parsing; no resolver is involved.
  unsigned char buf[16];
  const std::string ip_str(ip);
  if (inet_pton(v6 ? AF_INET6 : AF_INET, ip_str.c_str(), buf) != 1) return bad();
  return ListenAddress{ip_str, static_cast<std::uint16_t>(port)};
}

}  // namespace tally::agent
