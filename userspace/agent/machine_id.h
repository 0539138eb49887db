// The host's stable identity for OTLP's host.id (systemd's machine-id(5)).
#pragma once

#include <string>

namespace tally::agent {

// The 32 hex digits of the file (default /etc/machine-id), or "" when it is
// missing, unreadable or not a machine id: host.id is then left out rather
// than invented.
std::string read_machine_id(const std::string& path = "/etc/machine-id");

}  // namespace tally::agent
