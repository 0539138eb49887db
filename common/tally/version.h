// tally's version, as CMakeLists.txt's project() declares it: the one place
// it is written (TALLY_VERSION comes from there as a compile definition).
#pragma once

#include <string_view>

namespace tally {

inline constexpr std::string_view kVersion = TALLY_VERSION;

}  // namespace tally
