#include "server_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include <curl/curl.h>

namespace tally::test {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string url_encode(const std::string& text) {
  CURL* c = curl_easy_init();
  char* e = curl_easy_escape(c, text.data(), static_cast<int>(text.size()));
  std::string out = e ? e : "";
  curl_free(e);
  curl_easy_cleanup(c);
  return out;
}

std::string gunzip(const std::string& data) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return {};
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char chunk[65536];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(chunk, sizeof chunk - zs.avail_out);
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string();
}

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const auto candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

ServerRun::ServerRun(std::string name, std::vector<std::string> argv, std::string ready_url)
    : name_(std::move(name)), argv_(std::move(argv)), ready_url_(std::move(ready_url)) {}

ServerRun::~ServerRun() {
  if (proc_) stop();
}

bool ServerRun::start() {
  Subprocess::Options o;
  o.capture_stdout = false;  // servers log a lot; stderr is kept for messages
  proc_ = std::make_unique<Subprocess>(argv_, o);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const HttpResult r = http_get(ready_url_);
    if (r.status >= 200 && r.status < 300) return true;
    if (proc_->wait(std::chrono::milliseconds(200)).has_value()) break;  // it died
  }
  error_ = name_ + " did not come up at " + ready_url_ + ": " + proc_->stderr_text();
  return false;
}

void ServerRun::stop(int signo) {
  if (!proc_) return;
  proc_->signal(signo);
  if (!proc_->wait(std::chrono::seconds(30)).has_value()) proc_->signal(9);
  proc_->wait(std::chrono::seconds(10));
  proc_.reset();
}

}  // namespace tally::test
