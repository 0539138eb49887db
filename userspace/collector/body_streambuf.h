// A read-only std::streambuf over a request body: the bytes as they are
// (Content-Encoding identity) or gunzipped on the fly (gzip), never handing
// out more than `limit` decoded bytes.
//
// Why a streambuf: the JSON parser reads through it, so the decoded body is
// never held in memory as a whole. Memory use is one 64 KiB window plus
// zlib's 32 KiB history, whatever the body expands to; a zip bomb costs CPU
// up to the limit and nothing more.
//
// Contract:
//   - `body` must outlive the streambuf; it is not copied.
//   - Reading stops (EOF) at the first of: end of the body, a decoding error
//     (failure() says what), or the limit (over_limit() is then true).
//   - drain() decodes and discards the rest, so that after a JSON error the
//     caller can still tell "too big" from "malformed".
// Not thread-safe; one streambuf per request.
#pragma once

#include <zlib.h>

#include <array>
#include <cstdint>
#include <optional>
#include <streambuf>
#include <string>
#include <string_view>

namespace tally::collector {

enum class BodyEncoding { identity, gzip };

class BodyStreambuf : public std::streambuf {
 public:
  BodyStreambuf(BodyEncoding encoding, std::string_view body, std::uint64_t limit);
  ~BodyStreambuf() override;
  BodyStreambuf(const BodyStreambuf&) = delete;
  BodyStreambuf& operator=(const BodyStreambuf&) = delete;

  // True once the decoded body was found to be longer than the limit.
  bool over_limit() const { return over_limit_; }
  // Why decoding stopped early, e.g. "gzip: invalid stored block lengths".
  const std::optional<std::string>& failure() const { return failure_; }
  // Decodes the rest of the body without keeping it.
  void drain();

 protected:
  int_type underflow() override;

 private:
  bool inflate_more();
  void fail(std::string what);

  BodyEncoding encoding_;
  std::string_view body_;
  std::uint64_t limit_;
  std::uint64_t decoded_ = 0;  // bytes handed out so far
  bool over_limit_ = false;
  bool finished_ = false;  // no more output: end, failure or limit
  std::optional<std::string> failure_;
  z_stream zs_{};
  bool zs_live_ = false;  // inflateInit2 succeeded, inflateEnd owed
  std::array<char, 64 * 1024> window_{};
};

}  // namespace tally::collector
