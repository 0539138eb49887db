#include "machine_id.h"

#include <cctype>
#include <fstream>

namespace tally::agent {

std::string read_machine_id(const std::string& path) {
  std::ifstream in(path);
  std::string id;
  if (!in || !std::getline(in, id)) return {};
  if (id.size() != 32) return {};
  for (unsigned char c : id) {
    if (!std::isxdigit(c)) return {};
  }
  return id;
}

}  // namespace tally::agent
