# One warning policy for every C++ target of the project.
add_library(tally_warnings INTERFACE)
target_compile_options(tally_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wcast-align -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough
  $<$<BOOL:${TALLY_WERROR}>:-Werror>)
