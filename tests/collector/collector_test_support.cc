#include "collector_test_support.h"

#include <algorithm>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "samples/json_line.h"
#include "samples/sample.h"

namespace tally::test {

std::vector<std::string> agent_lines(const std::string& host, std::uint64_t ts_ns, int count,
                                     std::uint32_t pid_base, bool with_host, samples::Form form) {
  std::vector<std::string> lines;
  int processes = with_host ? count - 1 : count;
  for (int i = 0; i < processes; ++i) {
    samples::ProcessSample s;
    s.ts_ns = ts_ns;
    s.interval_ns = 60'000'000'000;
    s.host = host;
    s.pid = pid_base + static_cast<std::uint32_t>(i);
    s.start_time_ns = 1'600'000'000'000'000'000 + s.pid;
    s.comm = "worker-" + std::to_string(s.pid);
    s.cmdline = "/usr/bin/worker --id " + std::to_string(s.pid) + " --config /etc/worker.conf";
    s.cgroup = "/system.slice/worker.service";
    s.cpu_ns = static_cast<std::uint64_t>(i + 1) * 1000;
    s.cpu_pct = samples::percent(s.cpu_ns, s.interval_ns);
    s.wait_ns = static_cast<std::uint64_t>(i) * 700;
    s.wait_pct = samples::percent(s.wait_ns, s.interval_ns);
    if (i % 3 == 1) {  // a container's process, named by the kubelet
      s.cgroup =
          "/kubepods/besteffort/pod8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/" + std::string(64, 'a');
      s.container_id = std::string(64, 'a');
      s.container_runtime = "cri";
      s.pod_uid = "8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
      s.pod_qos = "besteffort";
      s.pod = "web-0";
      s.pod_namespace = "shop";
      s.container = "nginx";
    }
    s.rss_bytes = 50u << 20;
    lines.push_back(samples::to_json_line(s, samples::Names::included, form));
  }
  if (with_host) {
    samples::HostSample h;
    h.ts_ns = ts_ns;
    h.interval_ns = 60'000'000'000;
    h.host = host;
    h.ncpu = 8;
    h.busy_ns = 123'456'789;
    h.cpu_pct = samples::percent(h.busy_ns, h.interval_ns * 8);
    h.processes = static_cast<std::uint32_t>(processes);
    h.steal_ns = 17;
    h.psi_some_ns = 4'000'000;
    h.unaccounted_ns = -1234;  // negative: a lag caught up
    lines.push_back(samples::to_json_line(h, form));
  }
  return lines;
}

std::string samples_body(const std::string& agent_id, const std::string& host, std::uint64_t seq,
                         const std::vector<std::string>& lines, std::size_t first, std::size_t n) {
  nlohmann::json head = {{"version", 1},
                         {"agent_id", agent_id},
                         {"host", host},
                         {"seq", seq},
                         {"kind", "samples"},
                         {"first_index", first},
                         {"batch_samples", lines.size()}};
  std::string body = head.dump();
  body.pop_back();  // the samples are spliced in as the agent's own text
  body += ",\"samples\":[";
  for (std::size_t i = first; i < first + n; ++i) {
    if (i > first) body += ',';
    body += lines[i];
  }
  body += "]}";
  return body;
}

std::string samples_body(const std::string& agent_id, const std::string& host, std::uint64_t seq,
                         const std::vector<std::string>& lines) {
  return samples_body(agent_id, host, seq, lines, 0, lines.size());
}

std::string without_names(const std::string& line) {
  auto j = nlohmann::ordered_json::parse(line);
  if (j["kind"] != "process") return line;
  for (const char* name : {"comm", "cmdline", "cgroup", "container_id", "container_runtime",
                           "pod_uid", "pod_qos", "pod", "namespace", "container"}) {
    j.erase(name);
  }
  return j.dump();
}

std::vector<std::string> without_names(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(without_names(l));
  return out;
}

std::string version2(std::string body) {
  const std::string v1 = R"("version":1)";
  body.replace(body.find(v1), v1.size(), R"("version":2)");
  return body;
}

std::string gap_body(const std::string& agent_id, const std::string& host, std::uint64_t seq,
                     std::uint64_t first_seq, std::uint64_t last_seq, std::uint64_t samples,
                     const std::string& reason) {
  nlohmann::json j = {{"version", 1},
                      {"agent_id", agent_id},
                      {"host", host},
                      {"seq", seq},
                      {"kind", "gap"},
                      {"gap",
                       {{"first_seq", first_seq},
                        {"last_seq", last_seq},
                        {"samples", samples},
                        {"reason", reason},
                        {"time_ns", 1'700'000'000'000'000'000},
                        {"detail", "test"}}}};
  return j.dump();
}

std::string successor_gap_body(const std::string& agent_id, const std::string& host,
                               std::uint64_t seq, const std::string& predecessor,
                               std::uint64_t predecessor_last_seq, std::uint64_t samples) {
  nlohmann::json j =
      nlohmann::json::parse(gap_body(agent_id, host, seq, 0, 0, samples, "outbox_lost"));
  j["gap"]["detail"] = "outbox deleted";
  j["gap"]["predecessor"] = {{"agent_id", predecessor}, {"last_seq", predecessor_last_seq}};
  return j.dump();
}

namespace {

class Deflater {
 public:
  explicit Deflater(int level) {
    if (deflateInit2(&zs_, level, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::runtime_error("deflateInit2");
    }
  }
  ~Deflater() { deflateEnd(&zs_); }
  void feed(std::string_view in, bool last, std::string& out) {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    char buf[65536];
    int rc;
    do {
      zs_.next_out = reinterpret_cast<Bytef*>(buf);
      zs_.avail_out = sizeof buf;
      rc = deflate(&zs_, last ? Z_FINISH : Z_NO_FLUSH);
      out.append(buf, sizeof buf - zs_.avail_out);
    } while (zs_.avail_out == 0 || (last && rc != Z_STREAM_END));
  }

 private:
  z_stream zs_{};
};

}  // namespace

std::string gzip(std::string_view data) {
  Deflater d(Z_DEFAULT_COMPRESSION);
  std::string out;
  d.feed(data, true, out);
  return out;
}

std::string gzip_zeros(std::uint64_t bytes) {
  Deflater d(Z_BEST_COMPRESSION);
  std::string zeros(1 << 20, '\0'), out;
  for (std::uint64_t done = 0; done < bytes; done += zeros.size()) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), bytes - done));
    d.feed(std::string_view(zeros.data(), n), false, out);
  }
  d.feed({}, true, out);
  return out;
}

nlohmann::json HttpResponse::json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

HttpConnection::HttpConnection(std::uint16_t port, std::chrono::milliseconds timeout,
                               const std::string& source_ip) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!source_ip.empty()) {
    sockaddr_in source{};
    source.sin_family = AF_INET;
    if (inet_pton(AF_INET, source_ip.c_str(), &source.sin_addr) != 1 ||
        bind(fd_, reinterpret_cast<sockaddr*>(&source), sizeof source) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) close(fd_);
}

bool HttpConnection::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

HttpResponse HttpConnection::request(const std::string& method, const std::string& target,
                                     std::string_view body, const Headers& headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool has_length = false;
  for (const auto& [name, value] : headers) {
    req += name + ": " + value + "\r\n";
    if (name == "Content-Length" || name == "Transfer-Encoding") has_length = true;
  }
  if (method == "POST" && !has_length)
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  if (!send_raw(req)) return {};
  return read_response();
}

HttpResponse HttpConnection::post_json(std::string_view body, const Headers& headers) {
  Headers h = headers;
  h.emplace_back("Content-Type", "application/json");
  return request("POST", "/v1/batches", body, h);
}

HttpResponse HttpConnection::read_response() {
  HttpResponse r;
  auto fill = [&]() {
    char buf[65536];
    ssize_t n;
    do {
      n = recv(fd_, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return false;
    buffered_.append(buf, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t end;
  while ((end = buffered_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return {};
  }
  std::string head = buffered_.substr(0, end);
  buffered_.erase(0, end + 4);
  std::size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12) return {};
  r.status = std::stoi(status_line.substr(9, 3));
  std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    std::size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    pos = e + 2;
  }
  std::size_t length =
      r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
  while (buffered_.size() < length) {
    if (!fill()) return {};
  }
  r.body = buffered_.substr(0, length);
  buffered_.erase(0, length);
  if (r.status == 100) return read_response();  // interim; the final response follows
  return r;
}

bool HttpConnection::readable(std::chrono::milliseconds wait) {
  if (!buffered_.empty()) return true;
  pollfd p{fd_, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(wait.count())) > 0;
}

bool HttpConnection::closed_by_peer(std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  char buf[4096];
  for (auto now = std::chrono::steady_clock::now(); now < deadline;
       now = std::chrono::steady_clock::now()) {
    // poll first: recv alone would block for the whole SO_RCVTIMEO.
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count()) + 1) <= 0) continue;
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0 && errno == ECONNRESET) return true;
    if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return true;
  }
  return false;
}

void HttpConnection::reset() {
  linger l{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd_);
  fd_ = -1;
}

CollectorProcess::CollectorProcess(const std::string& db_path, std::vector<std::string> extra,
                                   std::vector<std::string> wrapper) {
  std::vector<std::string> argv = std::move(wrapper);
  argv.push_back(COLLECTOR_PATH);
  // Loopback on a free port, unless the test says where.
  if (std::find(extra.begin(), extra.end(), "--listen") == extra.end()) {
    for (std::string arg : {"--listen", "127.0.0.1:0"}) argv.push_back(arg);
  }
  // Test samples are stamped near 1970: retention would delete them at
  // once. Tests of retention say how long.
  if (std::find(extra.begin(), extra.end(), "--retention-raw") == extra.end()) {
    for (std::string arg : {"--retention-raw", "36500d", "--retention-rollup-1m", "36500d",
                            "--retention-rollup", "36500d"}) {
      argv.push_back(arg);
    }
  }
  argv.push_back("--db");
  argv.push_back(db_path);
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = std::make_unique<Subprocess>(argv);
  auto line =
      process_->wait_for_line([](const std::string& l) { return l.rfind("listening on ", 0) == 0; },
                              std::chrono::seconds(10));
  if (!line) return;
  // "listening on 127.0.0.1:PORT, db PATH"
  std::size_t colon = line->find(':', 13);
  std::size_t comma = line->find(',', colon);
  port_ = static_cast<std::uint16_t>(std::stoul(line->substr(colon + 1, comma - colon - 1)));
}

std::uint64_t CollectorProcess::peak_rss_kib() const {
  std::ifstream status("/proc/" + std::to_string(process_->pid()) + "/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      std::uint64_t kib = 0;
      status >> kib;
      return kib;
    }
  }
  return 0;
}

std::optional<int> CollectorProcess::stop() {
  process_->signal(SIGTERM);
  return process_->wait(std::chrono::seconds(10));
}

}  // namespace tally::test
