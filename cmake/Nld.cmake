# nld_add_library(NAME SOURCES ... DEPS ...): one static library per module, target nld_NAME,
# alias nld::NAME. Includes are rooted at src/ so headers read as "dns/wire.h".
function(nld_add_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(nld_${name} STATIC ${A_SOURCES})
  add_library(nld::${name} ALIAS nld_${name})
  target_include_directories(nld_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(nld_${name} PUBLIC ${A_DEPS} PRIVATE nld_warnings nld_sanitizers)
  target_link_libraries(nld_${name} INTERFACE nld_sanitizers)
  # One section per function/object so executables linked with --gc-sections (node-cache, for
  # its idle RSS) keep only what they reference.
  target_compile_options(nld_${name} PRIVATE -ffunction-sections -fdata-sections)
endfunction()

# nld_add_unit_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with ctest under
# label "unit". Unit tests need no root, no network beyond loopback, and run in the sanitizer build.
function(nld_add_unit_test name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  # nld_test_support: the shared C++ test helpers (tests/support, tests/README.md).
  target_link_libraries(${name} PRIVATE ${A_DEPS} nld_test_support GTest::gtest GTest::gmock
                        GTest::gtest_main nld_warnings nld_sanitizers)
  include(GoogleTest)
  gtest_discover_tests(${name} PROPERTIES LABELS unit TIMEOUT 120 DISCOVERY_TIMEOUT 60)
endfunction()

# nld_add_system_test(NAME COMMAND ... [LABELS ...] [TIMEOUT s]): a test that drives real
# processes (knotd, ovsdb-server, node-cache binary, namespaces). Skipped in NLD_UNIT_ONLY builds.
function(nld_add_system_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NLD_UNIT_ONLY)
    return()
  endif()
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${A_COMMAND})
  # Serial: these tests measure time (TTL countdown, timeouts, CPU use) and share the machine's
  # two cores with real daemons; running them one at a time keeps them deterministic.
  set_tests_properties(${name} PROPERTIES LABELS "system;${A_LABELS}" TIMEOUT ${A_TIMEOUT}
    RUN_SERIAL TRUE
    ENVIRONMENT "NLD_BUILD_DIR=${PROJECT_BINARY_DIR};NLD_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# nld_add_fuzzer(NAME SOURCES ... DEPS ... CORPUS dir): a libFuzzer target (LLVMFuzzerTestOneInput).
# With NLD_FUZZ=ON (clang) it links libFuzzer: run it as `fuzz/<dir>/NAME corpus/`. Otherwise it
# links fuzz/standalone_main.cc, which feeds every file of the corpus to the target once, and is
# registered with ctest (label unit) so the seed corpus is replayed by every test run, also under
# the sanitizers.
function(nld_add_fuzzer name)
  cmake_parse_arguments(A "" "CORPUS" "SOURCES;DEPS" ${ARGN})
  if(NLD_FUZZ)
    add_executable(${name} ${A_SOURCES})
    target_link_libraries(${name} PRIVATE ${A_DEPS} nld_warnings nld_sanitizers)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(${name} ${A_SOURCES} ${PROJECT_SOURCE_DIR}/fuzz/standalone_main.cc)
    target_link_libraries(${name} PRIVATE ${A_DEPS} nld_warnings nld_sanitizers)
    add_test(NAME ${name}_corpus COMMAND ${name} ${A_CORPUS})
    set_tests_properties(${name}_corpus PROPERTIES LABELS "unit;fuzz" TIMEOUT 300)
  endif()
endfunction()
