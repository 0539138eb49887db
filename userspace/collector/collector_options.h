// tally-collector's command line. Every bad flag or value is one line on
// stderr naming the flag and what it accepts, and exit code 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collector/housekeeper.h"
#include "collector/ingest_budget.h"
#include "collector/query_store.h"
#include "collector/store_schema.h"

namespace tally::collector {

// The automatic --max-connections when file descriptors allow more: the
// reference collector's single SQLite writer serves about that many agents
// shipping once a minute.
inline constexpr std::uint64_t kDefaultMaxConnections = 16384;

struct CollectorOptions {
  std::string listen_address = "127.0.0.1";  // an IP literal
  std::uint16_t listen_port = 8080;          // 0: the kernel picks one
  std::string db_path;
  std::string token_file;  // empty: no authentication (token_file.h: the format)
  // Tokens that may read (the query API): apart from the agents' tokens, so
  // that an agent's token cannot read the fleet. Empty: see open_reads.
  std::string read_token_file;
  // Reads without a token, wherever the collector listens. Without it and
  // without a read token file, reads are open only on a loopback address.
  bool open_reads = false;
  // Credentials whose agents and hosts the next request's credential takes
  // over (moving a fleet from one shared token to a token per agent).
  std::vector<std::string> rebind_from;
  std::string log_level = "info";
  Durability durability = Durability::full;
  // Process names (protocol version 2) not sent again for this long are
  // forgotten; a live process's agent then sends them again after a 409.
  std::chrono::hours names_max_age{7 * 24};
  // How long raw samples, minute rollups and hour rollups are kept.
  Retention retention;
  // Connections open at once, so that a few clients cannot take every file
  // descriptor. 0: derived from RLIMIT_NOFILE (fd_limit.h), at most
  // kDefaultMaxConnections.
  std::uint64_t max_connections = 0;
  // Per client address (an IPv6 client: its /64). Agents behind one NAT
  // share an address, one connection each.
  std::uint64_t max_connections_per_address = 256;
  // How long one query may run (0: no limit).
  std::chrono::milliseconds query_timeout = QueryLimits{}.time;
  // Batch requests held at once (bodies, decoded, waiting for the writer).
  std::uint64_t ingest_max_requests = IngestBudget::Limits{}.requests;
  std::uint64_t ingest_max_bytes = IngestBudget::Limits{}.bytes;
  // Hidden (tests and tuning):
  std::chrono::milliseconds header_timeout{10000};      // a new connection's request header
  std::chrono::milliseconds request_timeout{30000};     // body, response, and idle keep-alive
  std::chrono::milliseconds shutdown_grace{5000};       // in-flight requests after SIGTERM
  std::uint64_t max_db_pages = 0;                       // 0: unlimited
  unsigned decode_threads = 0;                          // 0: one per CPU
  std::chrono::milliseconds housekeeping_period{1000};  // between idle housekeeping steps
};

struct CollectorCommandLine {
  std::optional<CollectorOptions> options;  // nullopt: exit with exit_code
  int exit_code = 0;
};

CollectorCommandLine parse_collector_command_line(int argc, char** argv);

// "127.0.0.1:8080", "[::1]:0" -> address and port; false if malformed.
bool parse_listen(const std::string& text, std::string& address, std::uint16_t& port);

}  // namespace tally::collector
