# cnx_add_test(NAME <name> LABELS <unit|integration|slow> SOURCES ... LIBS ... [FIXTURES pg])
# One GoogleTest binary per call; each test case becomes a CTest test with the
# labels. FIXTURES names CTest fixtures the tests need (pg: the test cluster).
function(cnx_add_test)
  cmake_parse_arguments(T "" "NAME" "LABELS;SOURCES;LIBS;FIXTURES" ${ARGN})
  if(NOT CNX_BUILD_TESTS)
    return()
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${T_NAME} PRIVATE
    CNX_SHARED_DIR="${CNX_SHARED_DIR}"
    CNX_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    CNX_BINARY_DIR="${CMAKE_BINARY_DIR}")
  set(props LABELS "${T_LABELS}")
  if(T_FIXTURES)
    list(APPEND props FIXTURES_REQUIRED "${T_FIXTURES}")
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60
    PROPERTIES ${props})
endfunction()

# cnx_module(<name> SOURCES ... DEPS ...): the library target cnx_<name>, include root src/.
function(cnx_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(cnx_${name} STATIC ${M_SOURCES})
  target_include_directories(cnx_${name} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(cnx_${name} PUBLIC ${M_DEPS})
endfunction()

# cnx_add_fuzz(NAME <name> SOURCES ... LIBS ... SEEDS <dir>...)
# With CNX_BUILD_FUZZ (the `fuzz` preset, clang) it builds a libFuzzer binary.
# Otherwise it builds the same target body with a small driver that replays every
# file of the seed directories, registered as a `unit` test: the seeds never crash.
function(cnx_add_fuzz)
  cmake_parse_arguments(F "" "NAME" "SOURCES;LIBS;SEEDS" ${ARGN})
  if(CNX_BUILD_FUZZ)
    add_executable(${F_NAME} ${F_SOURCES})
    target_compile_options(${F_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(${F_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(${F_NAME} PRIVATE ${F_LIBS})
  elseif(CNX_BUILD_TESTS)
    add_executable(${F_NAME}_replay ${F_SOURCES} ${CMAKE_SOURCE_DIR}/cmake/fuzz_replay_main.cc)
    target_link_libraries(${F_NAME}_replay PRIVATE ${F_LIBS})
    add_test(NAME ${F_NAME}_replay COMMAND ${F_NAME}_replay ${F_SEEDS})
    set_tests_properties(${F_NAME}_replay PROPERTIES LABELS "unit")
  endif()
endfunction()
