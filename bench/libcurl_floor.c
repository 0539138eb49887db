/* libcurl_floor URL: the resident memory that linking Debian's libcurl costs
 * any process, the baseline tallyd's RSS is read against in scripts/bench.
 * It initialises libcurl, POSTs one empty body to URL (as a shipper would),
 * prints "ready" and sleeps until killed, so the caller reads
 * /proc/PID/status in the same state tallyd is in: libraries loaded,
 * TLS/SSH back-ends initialised, one connection made. Plain C, so that no
 * C++ runtime is counted. */
#include <curl/curl.h>
#include <stdio.h>
#include <unistd.h>

static size_t discard(char* data, size_t size, size_t n, void* user) {
  (void)data;
  (void)user;
  return size * n;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: libcurl_floor URL\n");
    return 2;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
  CURL* curl = curl_easy_init();
  if (!curl) return 1;
  curl_easy_setopt(curl, CURLOPT_URL, argv[1]);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_perform(curl); /* any answer will do: the code paths are loaded */
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
