// Walks the top-level members of one JSON object line without building a
// document: the native format only needs to find a few members of each
// sample line and copy the others through byte for byte.
#pragma once

#include <string_view>
#include <vector>

namespace tally::shipping {

struct JsonMember {
  std::string_view key;    // between the quotes, escapes not decoded
  std::string_view value;  // the value's text exactly as in the line
};

// Fills members with the object's top-level members, in order. False when
// the line is not one well-formed-looking object (the caller then passes it
// on untouched): the scanner checks structure, not number or escape syntax.
bool scan_members(std::string_view line, std::vector<JsonMember>& members);

}  // namespace tally::shipping
