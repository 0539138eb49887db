#include "collector/collector_options.h"

#include <cstdio>
#include <map>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>

namespace tally::collector {

bool parse_listen(const std::string& text, std::string& address, std::uint16_t& port) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return false;  // an IPv6 address needs brackets
  }
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  unsigned long value = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned long>(c - '0');
    if (value > 65535) return false;
  }
  address = host;
  port = static_cast<std::uint16_t>(value);
  return true;
}

namespace {

// Flags typed in other units than CollectorOptions holds, converted after
// parsing.
struct TypedFlags {
  std::string listen = "127.0.0.1:8080";
  std::string durability = "full";
  std::uint64_t names_max_age_hours = 7 * 24;
  std::uint64_t query_timeout_ms = 0;
  std::uint64_t ingest_max_mib = 0;
  std::uint64_t header_timeout_ms = 10000;
  std::uint64_t request_timeout_ms = 30000;
  std::uint64_t shutdown_grace_ms = 5000;
  std::uint64_t housekeeping_ms = 1000;
  // Retention, in seconds ("14d" and "36h" are converted by CLI11).
  std::uint64_t retention_raw_s = 14 * 86400;
  std::uint64_t retention_rollup_1m_s = 35 * 86400;
  std::uint64_t retention_rollup_s = 400 * 86400;
};

// 1 minute to 100 years, written with a unit: 90m, 36h, 14d (a bare
// number is seconds).
void add_retention_flag(CLI::App& app, const char* name, std::uint64_t& seconds, const char* help) {
  app.add_option(name, seconds, help)
      ->transform(CLI::AsNumberWithUnit(
          std::map<std::string, std::uint64_t>{{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
          CLI::AsNumberWithUnit::CASE_SENSITIVE))
      ->check(CLI::Range(std::uint64_t{60}, std::uint64_t{100} * 366 * 86400))
      ->default_str(fmt::format("{}d", seconds / 86400));
}

// Where the collector listens and stores, and whom it trusts.
void add_service_flags(CLI::App& app, CollectorOptions& o, TypedFlags& typed) {
  app.add_option("--listen", typed.listen,
                 "HOST:PORT to serve on, an IP address (port 0: any free)")
      ->capture_default_str();
  app.add_option("--db", o.db_path,
                 "SQLite database file (created 0600 if missing, and its directory 0700)")
      ->required();
  auto* token_file = app.add_option("--token-file", o.token_file,
                                    "File of the bearer tokens clients must present (format above)")
                         ->check(CLI::ExistingFile);
  app.add_option("--read-token-file", o.read_token_file,
                 "File of the bearer tokens that may read (GET /v1/...), apart from the agents' "
                 "(same format)")
      ->check(CLI::ExistingFile);
  app.add_flag("--open-reads", o.open_reads,
               "Serve reads without a token on any address (without it, and without "
               "--read-token-file, only on a loopback address)");
  app.add_option("--rebind-from", o.rebind_from,
                 "Credential whose agents move to the credential of their next request "
                 "(repeatable; to leave a shared token)")
      ->needs(token_file);
  app.add_option("--log-level", o.log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();
  app.add_option("--durability", typed.durability,
                 "full: an ack survives power loss; normal: only a collector crash")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  app.add_option("--names-max-age-hours", typed.names_max_age_hours,
                 "Forget a process's names not sent again for this long (agents resend them)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{24 * 3650}))
      ->capture_default_str();
  add_retention_flag(app, "--retention-raw", typed.retention_raw_s,
                     "Keep every sample this long (90m, 36h, 14d)");
  add_retention_flag(app, "--retention-rollup-1m", typed.retention_rollup_1m_s,
                     "Keep per-minute sums by host, comm, cgroup and top process this long");
  add_retention_flag(app, "--retention-rollup", typed.retention_rollup_s,
                     "Keep per-hour sums by host, comm, cgroup and top process this long");
}

// What one collector takes on at once.
void add_limit_flags(CLI::App& app, CollectorOptions& o, TypedFlags& typed) {
  app.add_option("--max-connections", o.max_connections,
                 "Most connections open at once; further ones are closed unanswered. 0: the file "
                 "descriptor limit (raised to the hard limit) less 64, at most " +
                     std::to_string(kDefaultMaxConnections))
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 24))
      ->capture_default_str();
  app.add_option("--max-connections-per-address", o.max_connections_per_address,
                 "Most connections open at once from one client IP address (IPv6: one /64)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 24))
      ->capture_default_str();
  app.add_option("--query-timeout-ms", typed.query_timeout_ms,
                 "Stop a query that runs longer and answer 503 (0: no limit)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{3600000}))
      ->capture_default_str();
  app.add_option("--ingest-max-requests", o.ingest_max_requests,
                 "Batch requests held at once; more get 503 + Retry-After")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100000}))
      ->capture_default_str();
  app.add_option("--ingest-max-mib", typed.ingest_max_mib,
                 "MiB of batch requests held at once; more get 503 + Retry-After")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 20))
      ->capture_default_str();
}

// Tuning for tests and benchmarks.
void add_hidden_flags(CLI::App& app, CollectorOptions& o, TypedFlags& typed) {
  // Hidden: an empty group name keeps these out of --help.
  app.add_option("--header-timeout-ms", typed.header_timeout_ms)
      ->check(CLI::Range(std::uint64_t{50}, std::uint64_t{3600000}))
      ->group("");
  app.add_option("--request-timeout-ms", typed.request_timeout_ms)
      ->check(CLI::Range(std::uint64_t{50}, std::uint64_t{3600000}))
      ->group("");
  app.add_option("--shutdown-grace-ms", typed.shutdown_grace_ms)
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{600000}))
      ->group("");
  app.add_option("--max-db-pages", o.max_db_pages)->group("");
  app.add_option("--housekeeping-ms", typed.housekeeping_ms)
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3600000}))
      ->group("");
  app.add_option("--decode-threads", o.decode_threads)->check(CLI::Range(0u, 256u))->group("");
}

}  // namespace

CollectorCommandLine parse_collector_command_line(int argc, char** argv) {
  CollectorOptions o;
  CLI::App app{
      "tally-collector: receives tallyd's sample batches over HTTP and stores them in SQLite.\n\n"
      "Examples:\n"
      "  tally-collector --db /var/lib/tally/collector.db\n"
      "  tally-collector --listen 0.0.0.0:8080 --db c.db --token-file /etc/tally/tokens\n\n"
      "Token file: one token per line, or NAME TOKEN; '#' comments. Each agent id is bound\n"
      "to the credential (name) it first wrote with; SIGHUP re-reads the file.\n",
      "tally-collector"};
  app.get_formatter()->column_width(34);
  TypedFlags typed;
  typed.query_timeout_ms = static_cast<std::uint64_t>(o.query_timeout.count());
  typed.ingest_max_mib = o.ingest_max_bytes >> 20;
  add_service_flags(app, o, typed);
  add_limit_flags(app, o, typed);
  add_hidden_flags(app, o, typed);

  try {
    app.parse(argc, argv);
    if (!parse_listen(typed.listen, o.listen_address, o.listen_port)) {
      throw CLI::ValidationError(
          "--listen",
          "expected HOST:PORT with an IP address, e.g. 127.0.0.1:8080 or [::1]:0, "
          "got " +
              typed.listen);
    }
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return {std::nullopt, 0};
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tally-collector: %s (see tally-collector --help)\n", e.what());
    return {std::nullopt, 2};
  }
  o.durability = typed.durability == "normal" ? Durability::normal : Durability::full;
  o.names_max_age = std::chrono::hours(typed.names_max_age_hours);
  o.header_timeout = std::chrono::milliseconds(typed.header_timeout_ms);
  o.request_timeout = std::chrono::milliseconds(typed.request_timeout_ms);
  o.query_timeout = std::chrono::milliseconds(typed.query_timeout_ms);
  o.ingest_max_bytes = typed.ingest_max_mib << 20;
  o.shutdown_grace = std::chrono::milliseconds(typed.shutdown_grace_ms);
  o.housekeeping_period = std::chrono::milliseconds(typed.housekeeping_ms);
  constexpr std::uint64_t kNsPerS = 1'000'000'000;
  o.retention.raw_ns = typed.retention_raw_s * kNsPerS;
  o.retention.minute_rollups_ns = typed.retention_rollup_1m_s * kNsPerS;
  o.retention.hour_rollups_ns = typed.retention_rollup_s * kNsPerS;
  return {o, 0};
}

}  // namespace tally::collector
