#include "agent/machine_id.h"

#include <cctype>
#include <fstream>
#include <string_view>

namespace tally::agent {

std::string read_machine_id(const std::string& path) {
  std::ifstream in(path);
  // A fixed buffer rather than std::getline into a std::string: GCC 12 at -O2
  // reports a false -Warray-bounds on moving a 32-character std::string out.
  char line[64] = {};
  if (!in || !in.getline(line, sizeof line)) return {};
  const std::string_view id(line);
  if (id.size() != 32) return {};
  for (unsigned char c : id) {
    if (!std::isxdigit(c)) return {};
  }
  return std::string(id);
}

}  // namespace tally::agent
