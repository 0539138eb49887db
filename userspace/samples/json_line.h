// A sample's JSON line: the form of --stdout, of the native protocol and of
// outbox records written before compact records. One object, no trailing
// newline; members in the order docs/protocol.md lists them. Strings that
// are not valid UTF-8 (a command line can hold any bytes) get U+FFFD for
// the bad bytes.
#pragma once

#include <string>
#include <vector>

#include "samples/sample.h"

namespace tally::samples {

// Whether a process line spells out comm, cmdline and cgroup. The native
// format leaves them out once the collector holds them (docs/protocol.md,
// "Process names").
enum class Names { included, left_out };

std::string to_json_line(const ProcessSample& s, Names names = Names::included);
std::string to_json_line(const HostSample& s);
// An UnknownSample is its line, unchanged.
std::string to_json_line(const Sample& s);

// The interval's lines, processes first and the host line last.
std::vector<std::string> json_lines(const IntervalSamples& interval);

}  // namespace tally::samples
