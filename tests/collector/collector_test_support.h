// Test helpers for the collector suites: a temporary directory, batch and
// gap bodies built from the agent's own sample lines, gzip, a blocking
// HTTP/1.1 client over loopback, and a tally-collector child process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "samples/json_line.h"
#include "subprocess.h"
#include "temp_dir.h"

namespace tally::test {

// `count` sample lines exactly as tallyd writes them (userspace/agent/sample.cc):
// process lines for pids pid_base, pid_base+1, ... and, if with_host, a host
// line last. cpu_ns of pid p is (p - pid_base + 1) * 1000; every third
// process is in a pod. `form`: the lines of this tallyd, or of one from
// before wait and container fields.
std::vector<std::string> agent_lines(const std::string& host, std::uint64_t ts_ns, int count,
                                     std::uint32_t pid_base = 100, bool with_host = true,
                                     samples::Form form = samples::Form::current);

// {"version":1,...,"kind":"samples",...} holding lines[first, first+n).
std::string samples_body(const std::string& agent_id, const std::string& host, std::uint64_t seq,
                         const std::vector<std::string>& lines, std::size_t first, std::size_t n);
// The whole batch in one body.
std::string samples_body(const std::string& agent_id, const std::string& host, std::uint64_t seq,
                         const std::vector<std::string>& lines);
// Protocol version 2 (docs/protocol.md, "Process names"): a process line
// with comm, cmdline and cgroup left out, as an agent sends it once the
// collector holds them; other lines unchanged.
std::string without_names(const std::string& line);
std::vector<std::string> without_names(const std::vector<std::string>& lines);
// A samples_body() body marked as protocol version 2.
std::string version2(std::string body);
std::string gap_body(const std::string& agent_id, const std::string& host, std::uint64_t seq,
                     std::uint64_t first_seq, std::uint64_t last_seq, std::uint64_t samples,
                     const std::string& reason);
// The gap record an agent whose outbox was lost sends under its new agent
// id (docs/protocol.md, "Successors"): reason outbox_lost, first_seq =
// last_seq = 0, and the predecessor it continues.
std::string successor_gap_body(const std::string& agent_id, const std::string& host,
                               std::uint64_t seq, const std::string& predecessor,
                               std::uint64_t predecessor_last_seq, std::uint64_t samples);

std::string gzip(std::string_view data);
// `bytes` zeros, gzip-compressed at maximum ratio, without holding them all.
std::string gzip_zeros(std::uint64_t bytes);

struct HttpResponse {
  int status = 0;                              // 0: no response (connection failed or closed)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  nlohmann::json json() const;  // the body parsed (null on failure)
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One keep-alive connection to 127.0.0.1:port. Blocking, with a receive timeout.
// `source_ip` binds the client end first (any of 127/8 is loopback), so that
// tests can play several client addresses.
class HttpConnection {
 public:
  explicit HttpConnection(std::uint16_t port,
                          std::chrono::milliseconds timeout = std::chrono::seconds(20),
                          const std::string& source_ip = {});
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Sends a request (Content-Length set from body for POST) and reads the response.
  HttpResponse request(const std::string& method, const std::string& target,
                       std::string_view body = {}, const Headers& headers = {});
  HttpResponse post_json(std::string_view body, const Headers& headers = {});
  HttpResponse get(const std::string& target) { return request("GET", target); }

  // Raw access for misbehaving-client tests.
  bool send_raw(std::string_view bytes);
  HttpResponse read_response();
  // True when response bytes (or EOF) are waiting to be read, within `wait`.
  bool readable(std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // True if the server closes the connection within `wait` (reads to EOF).
  bool closed_by_peer(std::chrono::milliseconds wait);
  // Closes with RST instead of FIN (SO_LINGER 0).
  void reset();

 private:
  int fd_ = -1;
  std::string buffered_;
};

// A tally-collector child on 127.0.0.1:0 with the database in `db_path`.
// `wrapper` runs it, e.g. {"/usr/bin/prlimit", "--nofile=200:200"}.
class CollectorProcess {
 public:
  explicit CollectorProcess(const std::string& db_path, std::vector<std::string> extra_args = {},
                            std::vector<std::string> wrapper = {});
  std::uint16_t port() const { return port_; }
  bool started() const { return port_ != 0; }
  pid_t pid() const { return process_->pid(); }
  Subprocess& process() { return *process_; }
  // VmHWM (peak resident set) in KiB from /proc/PID/status, 0 if unreadable.
  std::uint64_t peak_rss_kib() const;
  // Asks the collector to stop (SIGTERM) and returns its exit code.
  std::optional<int> stop();

 private:
  std::unique_ptr<Subprocess> process_;
  std::uint16_t port_ = 0;
};

}  // namespace tally::test
