#include "http_get.h"

#include <curl/curl.h>

namespace tally::test {

namespace {

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// A GET, or with a body a POST of it as content_type.
HttpResult perform(const std::string& url, const std::string* body,
                   const std::string& content_type) {
  HttpResult r;
  CURL* c = curl_easy_init();
  curl_slist* headers = nullptr;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (body != nullptr) {
    headers = curl_slist_append(nullptr, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}

}  // namespace

HttpResult http_get(const std::string& url) { return perform(url, nullptr, ""); }

HttpResult http_post(const std::string& url, const std::string& body,
                     const std::string& content_type) {
  return perform(url, &body, content_type);
}

}  // namespace tally::test
