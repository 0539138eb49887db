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

// Whether a process line spells out its names: comm, cmdline, cgroup and the
// container and pod fields that are set. The native
// format leaves them out once the collector holds them (docs/protocol.md,
// "Process names").
enum class Names { included, left_out };

// Which release's fields a line has. tallyd writes `current`; a collector
// rebuilding a line received from an older tallyd asks for `first_release`
// (no wait, container, pod, steal, pressure, unaccounted or BPF run time
// fields), so that such lines are stored as their numbers too.
enum class Form { current, first_release };

std::string to_json_line(const ProcessSample& s, Names names = Names::included,
                         Form form = Form::current);
std::string to_json_line(const HostSample& s, Form form = Form::current);
// Cgroup lines came with Form::current; the number groups a host does not
// offer are left out (usage, throttling, pressure).
std::string to_json_line(const CgroupSample& s);
// An UnknownSample is its line, unchanged.
std::string to_json_line(const Sample& s);

// The interval's lines: processes, then cgroups, and the host line last.
std::vector<std::string> json_lines(const IntervalSamples& interval);

}  // namespace tally::samples
