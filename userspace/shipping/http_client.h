// A blocking HTTP POST client over one reused libcurl easy handle, so
// consecutive requests to a sink share a keep-alive connection.
// Not thread-safe: each sink's thread owns its client.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tally/result.h"

typedef void CURL;

namespace tally::shipping {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{30000};
  std::string ca_file;  // extra trust for https; peer verification is never off
};

struct HttpResponse {
  long status = 0;
  std::string body;  // first 64 KiB at most: enough for any error message
  std::optional<std::string> retry_after;
};

// What a shipper needs of HTTP: one POST at a time. An interface so that
// every delivery path can be tested without a socket
// (tests/shipping/shipper_delivery_test.cc).
class HttpPoster {
 public:
  virtual ~HttpPoster() = default;
  // A transport failure (refused, reset, timeout, TLS) is an Error naming
  // the URL and the reason; any HTTP status is a response.
  virtual Result<HttpResponse> post(const std::string& url, const std::string& body,
                                    const std::vector<std::string>& headers) = 0;
};

class HttpClient final : public HttpPoster {
 public:
  explicit HttpClient(HttpClientOptions options);
  ~HttpClient() override;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> post(const std::string& url, const std::string& body,
                            const std::vector<std::string>& headers) override;

 private:
  struct CurlDeleter {
    void operator()(CURL* handle) const;
  };
  HttpClientOptions options_;
  std::unique_ptr<CURL, CurlDeleter> curl_;
};

// Call once in main() before any thread uses curl.
void http_global_init();

}  // namespace tally::shipping
