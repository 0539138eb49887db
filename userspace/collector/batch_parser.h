// Parses a decoded POST /v1/batches body into a BatchRequest, checking every
// field the protocol defines (docs/protocol.md, "Batch body").
//
// Streaming: the body is read through a std::istream and only one sample is
// held as parser state at a time, so memory is about the size of the
// samples kept, not of a DOM of the whole body.
//
// Errors name the field and the problem, as the 400 response carries them:
//   "samples[3].cpu_ns: expected unsigned integer, got string"
//   "version: unsupported version 2 (this collector speaks 1)"
//   "invalid JSON: parse error at line 1, column 9: ..."
// An unsupported version is reported before any other schema problem, so a
// newer agent always learns that it speaks the wrong version. Unknown fields
// are skipped at every level (forward compatibility) and kept inside samples.
// Pure: no I/O besides reading `in`; thread-compatible.
#pragma once

#include <istream>
#include <string_view>

#include "collector/batch_request.h"
#include "tally/result.h"

namespace tally::collector {

// Versions 1 to 3 are accepted; 2 adds samples that leave their process's
// names out (docs/protocol.md, "Process names"), 3 cgroup lines.
inline constexpr int kMinProtocolVersion = 1;
inline constexpr int kProtocolVersion = 3;
inline constexpr std::size_t kMaxJsonDepth = 64;
inline constexpr std::size_t kMaxAgentIdBytes = 256;

Result<BatchRequest> parse_batch(std::istream& in);
// The same from text in memory: the lexer reads contiguous bytes about
// twice as fast as through a stream.
Result<BatchRequest> parse_batch(std::string_view text);

}  // namespace tally::collector
