// Test helper: a loopback HTTP/1.1 server standing in for an OpenTelemetry
// Collector's /v1/metrics. It keeps every request (gzip bodies inflated)
// and answers from a script: queued responses first, then the default
// (200 with an empty ExportMetricsServiceResponse).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "loopback_server.h"

namespace tally::test {

class OtlpReceiver {
 public:
  struct Request {
    std::string path;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;                            // inflated if gzip
    int answered = 0;                            // the status it was given
    std::chrono::steady_clock::time_point at;    // when it arrived
  };
  struct Response {
    int status = 200;
    std::string body = "{}";
    std::string extra_headers;  // "Name: value\r\n" lines
  };

  OtlpReceiver();

  std::uint16_t port() const { return server_.port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/v1/metrics"; }
  void queue(Response r);
  void set_default(Response r);
  std::vector<Request> requests() const;

 private:
  void serve(int fd);
  bool serve_one(int fd, std::string& buffer);  // false: connection done
  Response next_response();

  mutable std::mutex mu_;
  std::deque<Response> script_;
  Response default_;
  std::vector<Request> requests_;
  LoopbackServer server_;  // last: its threads use the members above
};

}  // namespace tally::test
