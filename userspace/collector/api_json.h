// The JSON bodies the collector answers with (docs/protocol.md, "Responses"
// and "Query API"). Pure formatting; strings that are not valid UTF-8 (an
// error message quoting a header, say) get U+FFFD, never an exception.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "collector/batch_store.h"
#include "collector/query_store.h"

namespace tally::collector {

// {"stored":N,"duplicate":false|true}
std::string stored_json(std::uint64_t stored, bool duplicate);
// {"error":"..."}; the message is cut to 512 bytes.
std::string error_json(std::string_view message);
// 409 for samples that refer to process names the store lacks:
// {"error":…,"unknown_processes":[{"pid":…,"start_time_ns":…},…],"unknown_count":n}.
// The agent recognises it by the "unknown_processes" member.
std::string unknown_processes_json(const StoreOutcome& outcome);
// {"status":"ok"} or {"status":"unavailable"}, with "error":"..." when
// `error` is given, and "housekeeping":{counts} when `housekeeping` is (the
// details are for clients holding a token).
std::string health_json(bool healthy, const std::string* error,
                        const HousekeepingCounts* housekeeping = nullptr);
std::string agents_json(const std::vector<AgentReport>& agents);
// The samples as stored, verbatim: {"samples":[...],"truncated":bool}
std::string samples_json(const SampleRows& rows);
// {"top":[...],"truncated":bool}
std::string top_json(const TopRows& top);

}  // namespace tally::collector
