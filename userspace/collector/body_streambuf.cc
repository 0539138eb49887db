#include "collector/body_streambuf.h"

#include <algorithm>
#include <climits>

#include <fmt/format.h>

namespace tally::collector {

BodyStreambuf::BodyStreambuf(BodyEncoding encoding, std::string_view body, std::uint64_t limit)
    : encoding_(encoding), body_(body), limit_(limit) {
  if (encoding_ == BodyEncoding::identity) {
    // The body is already in memory: expose it directly, up to the limit.
    // streambuf wants char*, but nothing ever writes through the get area.
    char* begin = const_cast<char*>(body_.data());
    std::size_t shown = static_cast<std::size_t>(std::min<std::uint64_t>(body_.size(), limit_));
    setg(begin, begin, begin + shown);
    decoded_ = shown;
    over_limit_ = body_.size() > limit_;
    finished_ = true;
    return;
  }
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body_.data()));
  zs_.avail_in = 0;  // fed in inflate_more(), avail_in is only 32 bits
  // 16 + MAX_WBITS: gzip wrapper only (RFC 1952), as Content-Encoding: gzip
  // promises; a zlib or raw deflate stream is a decoding error.
  int rc = inflateInit2(&zs_, 16 + MAX_WBITS);
  if (rc != Z_OK) {
    fail(fmt::format("gzip: inflateInit2 failed ({})", rc));
    return;
  }
  zs_live_ = true;
}

BodyStreambuf::~BodyStreambuf() {
  if (zs_live_) inflateEnd(&zs_);
}

void BodyStreambuf::fail(std::string what) {
  if (!failure_) failure_ = std::move(what);
  finished_ = true;
}

BodyStreambuf::int_type BodyStreambuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  if (finished_ || !inflate_more()) return traits_type::eof();
  return traits_type::to_int_type(*gptr());
}

// Fills the window with the next decoded bytes; false when there are none.
bool BodyStreambuf::inflate_more() {
  const auto* end = reinterpret_cast<const Bytef*>(body_.data() + body_.size());
  for (;;) {
    if (zs_.avail_in == 0) {
      auto left = static_cast<std::size_t>(end - zs_.next_in);
      zs_.avail_in = static_cast<uInt>(std::min<std::size_t>(left, UINT_MAX));
    }
    // Ask for one byte more than the limit allows, so that reaching the limit
    // exactly is not mistaken for passing it.
    std::uint64_t room = limit_ - decoded_ + 1;
    auto want = static_cast<uInt>(std::min<std::uint64_t>(window_.size(), room));
    zs_.next_out = reinterpret_cast<Bytef*>(window_.data());
    zs_.avail_out = want;
    int rc = inflate(&zs_, Z_NO_FLUSH);
    std::size_t produced = want - zs_.avail_out;
    bool more_input = zs_.next_in != end;

    if (rc == Z_STREAM_END) {
      // RFC 1952 section 2.2: a gzip file is a series of members. Anything
      // after the last one must be another member, else inflate reports it.
      if (more_input) {
        inflateReset(&zs_);
      } else {
        finished_ = true;
      }
    } else if (rc == Z_BUF_ERROR && !more_input && zs_.avail_in == 0) {
      fail("gzip: stream truncated");
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      fail(fmt::format("gzip: {}", zs_.msg != nullptr ? zs_.msg : "corrupt stream"));
    }

    if (decoded_ + produced > limit_) {
      over_limit_ = true;
      finished_ = true;
      return false;
    }
    if (produced > 0) {
      decoded_ += produced;
      setg(window_.data(), window_.data(), window_.data() + produced);
      return true;
    }
    if (finished_) return false;
    if (!more_input && zs_.avail_in == 0) {
      fail("gzip: stream truncated");
      return false;
    }
  }
}

void BodyStreambuf::drain() {
  while (underflow() != traits_type::eof()) setg(eback(), egptr(), egptr());
}

}  // namespace tally::collector
