// tally-collector's command line. Every bad flag or value is one line on
// stderr naming the flag and what it accepts, and exit code 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "ingest_budget.h"
#include "query_store.h"
#include "store_schema.h"

namespace tally::collector {

struct CollectorOptions {
  std::string listen_address = "127.0.0.1";  // an IP literal
  std::uint16_t listen_port = 8080;          // 0: the kernel picks one
  std::string db_path;
  std::string token_file;  // empty: no authentication
  std::string log_level = "info";
  Durability durability = Durability::full;
  // Process names (protocol version 2) not sent again for this long are
  // forgotten; a live process's agent then sends them again after a 409.
  std::chrono::hours names_max_age{7 * 24};
  // How long one query may run (0: no limit).
  std::chrono::milliseconds query_timeout = QueryLimits{}.time;
  // Batch requests held at once (bodies, decoded, waiting for the writer).
  std::uint64_t ingest_max_requests = IngestBudget::Limits{}.requests;
  std::uint64_t ingest_max_bytes = IngestBudget::Limits{}.bytes;
  // Hidden (tests and tuning):
  std::chrono::milliseconds request_timeout{30000};  // whole request, and idle keep-alive
  std::chrono::milliseconds shutdown_grace{5000};    // in-flight requests after SIGTERM
  std::uint64_t max_db_pages = 0;                    // 0: unlimited
  unsigned decode_threads = 0;                       // 0: one per CPU
};

struct CollectorCommandLine {
  std::optional<CollectorOptions> options;  // nullopt: exit with exit_code
  int exit_code = 0;
};

CollectorCommandLine parse_collector_command_line(int argc, char** argv);

// "127.0.0.1:8080", "[::1]:0" -> address and port; false if malformed.
bool parse_listen(const std::string& text, std::string& address, std::uint16_t& port);

}  // namespace tally::collector
