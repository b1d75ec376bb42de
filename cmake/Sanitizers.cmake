add_library(nld_sanitizers INTERFACE)
# ASan and TSan cannot share a process (both own the shadow memory), and libFuzzer builds use ASan.
if(NLD_TSAN AND (NLD_SANITIZE OR NLD_FUZZ))
  message(FATAL_ERROR "NLD_TSAN cannot be combined with NLD_SANITIZE or NLD_FUZZ: use separate build dirs")
endif()
if(NLD_SANITIZE)
  target_compile_options(nld_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(nld_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
if(NLD_FUZZ)
  # Instrument every library for coverage; only fuzz targets link the libFuzzer main.
  target_compile_options(nld_sanitizers INTERFACE -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined)
  target_link_options(nld_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
if(NLD_TSAN)
  # Every target (libraries, tests, binaries) is instrumented: TSan only sees races between
  # accesses it instruments. Runtime options (suppressions for third-party code, halt on the first
  # report) are passed by scripts/test.sh through TSAN_OPTIONS.
  target_compile_options(nld_sanitizers INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(nld_sanitizers INTERFACE -fsanitize=thread)
endif()
