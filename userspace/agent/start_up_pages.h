// Gives back the pages tallyd touched only to start.
//
// Loading BPF programs, parsing the kernel's BTF, initialising libcurl and
// its TLS and SSH back-ends, reading the config: start-up runs code spread
// over ~10 MiB of the program's and its libraries' code and read-only data,
// which then stays in tallyd's resident set for its whole life although the
// steady state (read maps, build samples, commit, ship) runs a fraction of
// it. Those pages are clean copies of files, so dropping them from the page
// tables is always safe: any page used again is mapped again from the page
// cache on first touch (a minor fault), as the kernel does under memory
// pressure anyway.
//
// Call it while the process has a single thread: the mappings are read from
// /proc/self/smaps and then advised one by one, and another thread that
// unmapped a file and mapped anonymous memory at the same address in
// between would lose that memory's contents.

#pragma once

#include <cstdint>

#include "tally/result.h"

namespace tally::agent {

struct DroppedPages {
  std::uint64_t mappings = 0;  // mappings given back
  std::uint64_t bytes = 0;     // resident bytes they held
};

// madvise(MADV_DONTNEED) on every private, read-only mapping of a file
// (code and read-only data) that holds no page of its own: one that does
// (a relocated GOT, say, written before it was made read-only) is skipped,
// since dropping it would lose the writes. Reads /proc/self/smaps.
Result<DroppedPages> drop_start_up_pages();

}  // namespace tally::agent
