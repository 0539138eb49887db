// LEB128 varints: 7 bits to a byte, low bits first, the high bit set on
// every byte but the last. Small numbers (deltas, counts, page numbers) take
// one or two bytes instead of eight.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tally::varint {

inline void append(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Signed values as unsigned, small magnitudes small: 0, -1, 1, -2 -> 0, 1, 2, 3.
inline std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
inline std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// Reads from untrusted bytes: every read is bounds-checked, and a number
// longer than 10 bytes or past 64 bits is an error, never undefined.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::optional<std::uint64_t> next() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) return std::nullopt;
      const auto byte = static_cast<std::uint8_t>(bytes_[pos_++]);
      const std::uint64_t bits = byte & 0x7f;
      if (shift == 63 && bits > 1) return std::nullopt;  // past 64 bits
      v |= bits << shift;
      if ((byte & 0x80) == 0) return v;
    }
    return std::nullopt;
  }

  // `n` bytes as they are.
  std::optional<std::string_view> bytes(std::uint64_t n) {
    if (n > bytes_.size() - pos_) return std::nullopt;
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  bool at_end() const { return pos_ == bytes_.size(); }
  std::size_t position() const { return pos_; }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

}  // namespace tally::varint
