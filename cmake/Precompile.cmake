# Precompiled headers for the heavy header-only libraries (nlohmann_json,
# GoogleTest, Boost.Asio/Beast, fmt): each costs seconds per translation
# unit. A precompiled header costs ~10 s itself, so targets share one per
# header set (REUSE_FROM) instead of building their own: together that
# halves the build's CPU time, which keeps CI on two cores inside its budget.
# Applied here, after every target exists, so component CMakeLists stay plain.
# GCC uses a precompiled header only where every macro it was built with is
# defined the same way, so the definitions that imported library targets add
# (Debian's fmt, toml++ and GoogleTest are shared libraries; Boost
# auto-linking is MSVC-only) are made the same for every target. Call before
# any target is created.
macro(tally_uniform_definitions)
  if(TALLY_PCH)
    add_compile_definitions(BOOST_ALL_NO_LIB FMT_SHARED GTEST_HAS_PTHREAD=1 TOML_HEADER_ONLY=0
                            TOML_SHARED_LIB=1)
  endif()
endmacro()

function(tally_pch_owner name)
  add_library(${name} STATIC ${PROJECT_SOURCE_DIR}/cmake/pch_owner.cc)
  target_link_libraries(${name} PRIVATE tally_warnings nlohmann_json::nlohmann_json fmt::fmt)
  target_precompile_headers(${name} PRIVATE ${ARGN})
endfunction()

function(tally_reuse_pch owner)
  foreach(t ${ARGN})
    if(TARGET ${t})
      target_precompile_headers(${t} REUSE_FROM ${owner})
    endif()
  endforeach()
endfunction()

function(tally_precompile_headers)
  set(json <nlohmann/json.hpp> <fmt/format.h> <string> <vector> <memory>)
  tally_pch_owner(tally_pch_json ${json})
  tally_reuse_pch(tally_pch_json tally_accounting tally_shipping tally_control
                  tally_collector_decode tally_queue tally_bench_mix sampler_cost wire_bytes
                  drain_bench outbox_bench bpf_switch_cost task_farm)
  if(TARGET tally_agent)
    target_precompile_headers(tally_agent PRIVATE ${json} <boost/asio/io_context.hpp>
                              <boost/asio/steady_timer.hpp> <boost/asio/post.hpp>)
  endif()
  if(TARGET tally_collector)
    target_precompile_headers(tally_collector PRIVATE ${json} <boost/beast/core.hpp>
                              <boost/beast/http.hpp> <boost/asio/ip/tcp.hpp>)
  endif()
  if(TALLY_TESTS)
    tally_pch_owner(tally_pch_tests <gtest/gtest.h> ${json})
    target_link_libraries(tally_pch_tests PRIVATE GTest::gtest)
    set(test_targets tally_accounting_unit_tests tally_bpf_accounting_tests
        tally_agent_tests tally_collector_unit_tests tally_collector_server_tests
        tally_collector_throughput tally_collector_test_support tally_e2e_tests
        queue_tests queue_test_support tally_shipping_unit_tests tally_sink_unit_tests
        tally_sink_server_tests)
    tally_reuse_pch(tally_pch_tests ${test_targets})
    # Test sources compile as one unit per target: they share most of their
    # template instantiations (GoogleTest, nlohmann_json), which a unity
    # build generates once instead of once per file.
    foreach(t ${test_targets})
      if(TARGET ${t})
        set_target_properties(${t} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 0)
      endif()
    endforeach()
  endif()
endfunction()
