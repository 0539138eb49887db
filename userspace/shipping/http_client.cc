#include "shipping/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "shipping/url_redaction.h"
#include "tally/version.h"

namespace tally::shipping {

namespace {

// Collectors show it as the agent's software (tally-collector's fleet page).
const std::string kUserAgent = "tallyd/" + std::string(kVersion);

constexpr std::size_t kMaxResponseBody = 64 * 1024;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<std::string*>(user);
  const size_t n = size * count;
  if (out->size() < kMaxResponseBody)
    out->append(data, std::min(n, kMaxResponseBody - out->size()));
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* out = static_cast<HttpResponse*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (size_t i = 0; i < kName.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) != kName[i]) {
        match = false;
        break;
      }
    }
    if (match) {
      std::string value(line.substr(kName.size()));
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
      out->retry_after = value;
    }
  }
  // A new status line (after a redirect or 100 Continue) resets what we saw.
  if (line.rfind("HTTP/", 0) == 0) out->retry_after.reset();
  return n;
}

}  // namespace

void http_global_init() { curl_global_init(CURL_GLOBAL_DEFAULT); }

void HttpClient::CurlDeleter::operator()(CURL* handle) const { curl_easy_cleanup(handle); }

HttpClient::HttpClient(HttpClientOptions options)
    : options_(std::move(options)), curl_(curl_easy_init()) {}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::post(const std::string& url, const std::string& body,
                                      const std::vector<std::string>& headers) {
  if (!curl_) return Error::format("POST {}: curl_easy_init failed", redact_url(url));
  CURL* c = curl_.get();
  HttpResponse response;

  std::unique_ptr<curl_slist, SlistDeleter> list;
  for (const auto& h : headers) {
    curl_slist* next = curl_slist_append(list.get(), h.c_str());
    if (!next) return Error::format("POST {}: out of memory building headers", redact_url(url));
    (void)list.release();
    list.reset(next);
  }
  // No "Expect: 100-continue" round trip before large bodies.
  curl_slist* next = curl_slist_append(list.get(), "Expect:");
  if (next) {
    (void)list.release();
    list.reset(next);
  }

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: we are threaded
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, kUserAgent.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response);

  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  const CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  if (rc != CURLE_OK) {
    return Error::format("POST {}: {}", redact_url(url),
                         error_buffer[0] ? error_buffer : curl_easy_strerror(rc));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace tally::shipping
