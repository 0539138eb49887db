#include "otlp_receiver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "server_support.h"

namespace tally::test {

namespace {

bool write_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

}  // namespace

OtlpReceiver::OtlpReceiver() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    throw std::runtime_error("otlp receiver: bind/listen failed");
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

OtlpReceiver::~OtlpReceiver() {
  stop_.store(true);
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void OtlpReceiver::queue(Response r) {
  std::lock_guard lock(mu_);
  script_.push_back(std::move(r));
}

void OtlpReceiver::set_default(Response r) {
  std::lock_guard lock(mu_);
  default_ = std::move(r);
}

std::vector<OtlpReceiver::Request> OtlpReceiver::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

OtlpReceiver::Response OtlpReceiver::next_response() {
  std::lock_guard lock(mu_);
  if (script_.empty()) return default_;
  Response r = script_.front();
  script_.pop_front();
  return r;
}

void OtlpReceiver::accept_loop() {
  while (!stop_.load()) {
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stop_.load()) return;
      continue;
    }
    std::lock_guard lock(mu_);
    client_fds_.push_back(client);
    workers_.emplace_back([this, client] { serve(client); });
  }
}

namespace {

// Reads from fd until buffer holds `n` bytes; false on EOF or error.
bool fill(int fd, std::string& buffer, std::size_t n) {
  char chunk[65536];
  while (buffer.size() < n) {
    const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(got));
  }
  return true;
}

}  // namespace

bool OtlpReceiver::serve_one(int fd, std::string& buffer) {
  std::size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(fd, buffer, buffer.size() + 1)) return false;
  }
  Request req;
  req.at = std::chrono::steady_clock::now();
  const std::string head = buffer.substr(0, end);
  buffer.erase(0, end + 4);
  const auto first_space = head.find(' ');
  req.path = head.substr(first_space + 1, head.find(' ', first_space + 1) - first_space - 1);
  for (std::size_t pos = head.find("\r\n"); pos != std::string::npos;) {
    const std::size_t next = head.find("\r\n", pos + 2);
    const std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      req.headers[lower(line.substr(0, colon))] = value;
    }
    pos = next;
  }
  const std::size_t length =
      req.headers.count("content-length") ? std::stoul(req.headers["content-length"]) : 0;
  if (!fill(fd, buffer, length)) return false;
  req.body = buffer.substr(0, length);
  buffer.erase(0, length);
  if (req.headers["content-encoding"] == "gzip") req.body = gunzip(req.body);
  const Response r = next_response();
  req.answered = r.status;
  {
    std::lock_guard lock(mu_);
    requests_.push_back(std::move(req));
  }
  return write_all(fd, "HTTP/1.1 " + std::to_string(r.status) +
                           " Scripted\r\nContent-Type: application/json\r\n" + r.extra_headers +
                           "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n" +
                           r.body);
}

void OtlpReceiver::serve(int fd) {
  std::string buffer;
  while (serve_one(fd, buffer)) {
  }
  {
    std::lock_guard lock(mu_);
    client_fds_.erase(std::remove(client_fds_.begin(), client_fds_.end(), fd), client_fds_.end());
  }
  ::close(fd);
}

}  // namespace tally::test
