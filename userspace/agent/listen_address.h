// "IP:PORT" for servers tallyd runs itself (the Prometheus exporter).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tally/result.h"

namespace tally::agent {

struct ListenAddress {
  std::string ip;          // an IPv4 or IPv6 literal, without brackets
  std::uint16_t port = 0;  // 0: any free port (tallyd logs the one it got)
};

// Accepts "127.0.0.1:9464" or "[::1]:9464". Host names are refused: the
// exporter binds one address, and a name that resolves to a public address
// would expose per-process data unnoticed. The error says what is accepted.
Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace tally::agent
