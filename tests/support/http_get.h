// Test helper: HTTP GET over loopback with libcurl.
#pragma once

#include <string>

namespace tally::test {

struct HttpResult {
  long status = 0;  // 0: transport failure
  std::string body;
};

HttpResult http_get(const std::string& url);

}  // namespace tally::test
