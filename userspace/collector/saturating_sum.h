// saturating_sum(x): SQLite's sum() for the counters the queries add up,
// without its failure mode. sum() of integers stops the whole query with
// "integer overflow" once a group passes 2^63-1, so two samples at the
// protocol's bound broke every window over them (sqlite.org/lang_aggfunc.html);
// total() never fails but is a double, inexact above 2^53 ns (104 days of CPU,
// a busy host's week). This one is exact up to 2^63-1 and stays there once
// past it. NULLs are skipped; no rows give 0.
#pragma once

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

// Makes saturating_sum() available on this connection.
Status register_saturating_sum(sql::Database& db);

}  // namespace tally::collector
