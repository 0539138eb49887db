# libFuzzer builds (TALLY_FUZZ, scripts/fuzz): a library a fuzz target
# links is compiled with coverage instrumentation and the sanitizers, so the
# fuzzer sees inside it; whatever links it gets the sanitizer runtimes.
function(tally_fuzz_instrument target)
  if(TALLY_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined)
    target_link_options(${target} INTERFACE -fsanitize=address,undefined)
  endif()
endfunction()
