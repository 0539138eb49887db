// Test helper: HTTP GET and POST over loopback with libcurl.
#pragma once

#include <string>

namespace tally::test {

struct HttpResult {
  long status = 0;  // 0: transport failure
  std::string body;
};

HttpResult http_get(const std::string& url);
HttpResult http_post(const std::string& url, const std::string& body,
                     const std::string& content_type = "application/x-www-form-urlencoded");

}  // namespace tally::test
