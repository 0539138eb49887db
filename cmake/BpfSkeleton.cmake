# tally_bpf_skeleton(<name> <source.bpf.c> [DEPENDS headers...])
#
# Compiles a BPF C program with clang -target bpf into <name>.bpf.o and turns
# it into a libbpf skeleton header <name>.skel.h with bpftool, both in the
# build tree. The result is the INTERFACE target <name>_skel that puts the
# skeleton on the include path. Only UAPI headers and bpf/ are used, so the
# build does not depend on the build machine's kernel (CO-RE relocates field
# offsets at load time).
find_program(TALLY_BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(TALLY_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(TALLY_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(TALLY_BPF_ARCH arm64)
else()
  set(TALLY_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch
                OUTPUT_VARIABLE TALLY_MULTIARCH OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET)

function(tally_bpf_skeleton name source)
  cmake_parse_arguments(ARG "" "" "DEPENDS" ${ARGN})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  set(multiarch_include)
  if(TALLY_MULTIARCH)
    set(multiarch_include -idirafter /usr/include/${TALLY_MULTIARCH})
  endif()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${TALLY_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${TALLY_BPF_ARCH}
            -Wall -Werror -I${CMAKE_CURRENT_SOURCE_DIR} ${multiarch_include}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${source} -o ${obj}
    DEPENDS ${source} ${ARG_DEPENDS}
    COMMENT "BPF ${source}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${TALLY_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  # SYSTEM: the generated skeleton uses C casts our warning flags reject.
  target_include_directories(${name}_skel SYSTEM INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
