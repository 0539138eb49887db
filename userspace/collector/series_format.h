// The bodies of GET /v1/series (docs/protocol.md, "Series"): JSON for the
// page and scripts, CSV (RFC 4180, one row per step and series) for
// spreadsheets. Pure formatting.
#pragma once

#include <string>

#include "collector/series_query.h"

namespace tally::collector {

std::string series_json(const SeriesQuery& q, const SeriesRows& rows);
std::string series_csv(const SeriesRows& rows);

// "comm" for GroupKind::comm, and so on.
const char* group_kind_name(GroupKind kind);

}  // namespace tally::collector
