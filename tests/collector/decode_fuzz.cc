// libFuzzer target for the request decoding path: Content-Encoding, gzip
// inflate under limits, JSON parse, schema validation (request_decoder.h).
//
// Input layout: byte 0 picks how the rest is presented to the decoder:
//   bits 0-1  0: identity  1: gzip as given (raw bytes, mostly corrupt)
//             2: gzip of the rest, compressed here, so the JSON parser is
//                reached through inflate   3: the header from the input
//   bit 2     small limits (64 KiB / 4 KiB), so the limit paths are hit
// Beyond "no crash, no leak, no UB", it checks what the store relies on.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "collector/batch_parser.h"
#include "collector/json_field.h"
#include "collector/json_text.h"
#include "collector/request_decoder.h"

namespace {

using tally::collector::BatchRequest;
using tally::collector::Decoded;
using tally::collector::DecodeLimits;
using tally::collector::GapRecord;
using tally::collector::Rejection;
using tally::collector::SamplesPiece;

std::string gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void check(bool invariant) {
  if (!invariant) __builtin_trap();
}

void check_request(const BatchRequest& r) {
  check(!r.agent_id.empty() && r.seq >= 1);
  check(r.seq <= tally::collector::kMaxStoredInteger);
  if (const auto* piece = std::get_if<SamplesPiece>(&r.body)) {
    check(piece->first_index + piece->samples.size() <= piece->batch_samples);
    for (std::size_t i = 0; i < piece->samples.size(); ++i) {
      const auto& s = piece->samples[i];
      check(s.index == piece->first_index + i);
      check(s.ts_ns <= tally::collector::kMaxStoredInteger);
      // What the store keeps, and what it serves with the names put back,
      // must be JSON objects that parse again.
      check(nlohmann::json::parse(s.json, nullptr, false).is_object());
      auto j = nlohmann::json::parse(tally::collector::with_names(s.json, s.names_at, s.names),
                                     nullptr, false);
      check(j.is_object());
      check(j["kind"] == "process" || j["kind"] == "host");
    }
  }
  if (const auto* gap = std::get_if<GapRecord>(&r.body); gap && gap->predecessor) {
    // What the store's succession rules rely on.
    const auto& p = *gap->predecessor;
    check(!p.agent_id.empty() && p.agent_id.size() <= tally::collector::kMaxAgentIdBytes);
    check(p.agent_id != r.agent_id);
    check(p.last_seq <= tally::collector::kMaxStoredInteger);
    check(gap->first_seq == 0 && gap->last_seq == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  DecodeLimits limits;
  if ((mode & 4) != 0) limits = DecodeLimits{64 * 1024, 4 * 1024};

  std::string header, body;
  switch (mode & 3) {
    case 0:
      body = rest;
      break;
    case 1:
      header = "gzip";
      body = rest;
      break;
    case 2:
      header = "gzip";
      body = gzip(rest);
      break;
    default: {
      std::size_t nl = rest.find('\n');
      header = rest.substr(0, nl);
      body = nl == std::string_view::npos ? std::string() : std::string(rest.substr(nl + 1));
    }
  }
  Decoded d = tally::collector::decode_batch_request("application/json", header, body, limits);
  if (const auto* r = std::get_if<Rejection>(&d)) {
    check(r->status == 400 || r->status == 413 || r->status == 415);
    check(!r->message.empty());
  } else {
    check_request(std::get<BatchRequest>(d));
  }
  return 0;
}
