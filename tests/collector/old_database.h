// Databases as earlier collectors left them, for the schema upgrade tests:
// built from the schema each version had (as released), not from the
// current one with parts taken away.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tally::test {

// Writes a new database at `path` with schema `version` (1 to 4) holding
// what a collector of that version stored for one samples body: `lines` as
// seq 1 of agent `agent_id`, each sample's JSON whole, and from version 2 the
// names of every process line in process_names (from version 3 dated
// `recorded_ns`). Version 4 keeps names in their own table, and serves odd
// process lines with the names at the end (sent without them).
void write_old_database(const std::string& path, int version, const std::string& agent_id,
                        const std::string& host, const std::vector<std::string>& lines,
                        std::uint64_t recorded_ns = 0);

}  // namespace tally::test
