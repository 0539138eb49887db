// What tally-collector's HTTP parser may hold, and the answer to a request
// that breaks one of these limits or HTTP's syntax (docs/protocol.md, Limits).
//
// Beast's parser bounds the header by itself, but buffers a chunk-size line
// (with its extensions) and the trailer section whole, however long: the
// session's read buffer, capped at kMaxBuffered, is what bounds them. Field
// names and values over 65,535 bytes make Beast throw std::length_error
// (boost/beast/http/impl/fields.hpp); the cap keeps trailer fields below
// that, and the session still turns any exception of the parser into an
// answer. Pure: no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string_view>

#include <boost/beast/core/error.hpp>

#include "collector/api.h"

namespace tally::collector {

// The request line and header fields.
inline constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
// Everything the parser may hold unparsed at once: a header, one chunk-size
// line with its extensions, or a trailer section. Below 65,535 so that no
// trailer field can reach Beast's throwing size.
inline constexpr std::size_t kMaxBuffered = 64 * 1024 - 1;
static_assert(kMaxBuffered > kMaxHeaderBytes, "the header limit must fire first");

enum class ReadPhase { header, body };

// The response to a failed read of `phase`, or nullopt when there is nobody
// to answer (the peer left, reset, or timed out). `unparsed` is what the
// parser left in the buffer; `body_limit` the limit the body was read with.
std::optional<ApiResponse> framing_failure(const boost::beast::error_code& ec, ReadPhase phase,
                                           std::string_view unparsed, std::uint64_t body_limit);

// The response when the parser threw instead of returning an error.
ApiResponse parser_exception_response(const std::exception& e);

}  // namespace tally::collector
