add_library(nld_sanitizers INTERFACE)
if(NLD_SANITIZE)
  target_compile_options(nld_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(nld_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
if(NLD_FUZZ)
  # Instrument every library for coverage; only fuzz targets link the libFuzzer main.
  target_compile_options(nld_sanitizers INTERFACE -fsanitize=fuzzer-no-link,address,undefined)
  target_link_options(nld_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
