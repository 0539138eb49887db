// The fast path of POST /v1/batches: a samples body exactly as tallyd writes
// it, read with simdjson instead of the full parser (batch_parser.h).
//
// Why: the full parser (nlohmann's SAX lexer and the sample re-serializer)
// was half of the collector's CPU at ingest. Nearly every body comes from
// tallyd, whose bodies have one form: the NativeFormat envelope and the
// samples as samples/json_line.h writes them.
//
// Exactness: the fields are read with simdjson, then the body is written
// again from them with tallyd's own writers and compared with the received
// text byte for byte. Only a body that matches is taken, so its every key,
// order, type and spelling is what the full parser would also have accepted;
// the checks the protocol adds on values (ranges, agent_id length, pieces
// within batch_samples, names left out only in version 2) are made here as
// well. Anything else (another agent's spelling, an unknown field, a gap
// record, any error) returns nullopt, and the full parser takes the body and
// gives its exact answer.
#pragma once

#include <optional>
#include <string_view>

#include "collector/batch_request.h"

namespace tally::collector {

std::optional<BatchRequest> read_tallyd_body(std::string_view text);

}  // namespace tally::collector
