#include "otlp_receiver.h"

#include <algorithm>

#include "server_support.h"

namespace tally::test {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

}  // namespace

OtlpReceiver::OtlpReceiver() : server_("otlp receiver", [this](int fd) { serve(fd); }) {}

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

bool OtlpReceiver::serve_one(int fd, std::string& buffer) {
  std::string head;
  Request req;
  if (!read_http_request(fd, buffer, head, req.body)) return false;
  req.at = std::chrono::steady_clock::now();
  const auto first_space = head.find(' ');
  req.path = head.substr(first_space + 1, head.find(' ', first_space + 1) - first_space - 1);
  // Header lines between the request line and the blank line that ends head.
  for (std::size_t pos = head.find("\r\n"); pos + 4 < head.size();) {
    const std::size_t next = head.find("\r\n", pos + 2);
    const std::string line = head.substr(pos + 2, next - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      req.headers[lower(line.substr(0, colon))] = value;
    }
    pos = next;
  }
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
}

}  // namespace tally::test
