# classify_fuzz: libFuzzer target for the classifier (pipeline/classify): messages of
# arbitrary bytes, and rule files after a leading '\x01'. Built only with
# -DOMNIBUS_FUZZ=ON and clang, e.g.
#   cmake --build build-fuzz --target classify_fuzz
#   build-fuzz/tests/fuzz/classify_fuzz -max_total_time=60 -max_len=4096 /tmp/classify-corpus tests/fuzz/corpus/classify
# The corpus is also replayed by the plain test "fuzz_replay: classify corpus".
if(OMNIBUS_FUZZ AND CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  add_executable(classify_fuzz ${CMAKE_CURRENT_LIST_DIR}/classify_fuzz.cpp
                 ${PROJECT_SOURCE_DIR}/pipeline/classify/classifier.cpp
                 ${PROJECT_BINARY_DIR}/pipeline/classify/builtin_rules.cpp)
  target_include_directories(classify_fuzz PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/lib)
  target_include_directories(classify_fuzz SYSTEM PRIVATE ${CLD2_INCLUDE_DIR})
  target_link_libraries(classify_fuzz PRIVATE omnibus_envelope omnibus_config ${CLD2_LIBRARY} PkgConfig::RE2 yaml-cpp)
  target_compile_options(classify_fuzz PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
                         -fno-omit-frame-pointer -g)
  target_link_options(classify_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
endif()
if(NOT OMNIBUS_FUZZ)
  add_executable(classify_fuzz_replay ${CMAKE_CURRENT_LIST_DIR}/replay_main.cpp ${CMAKE_CURRENT_LIST_DIR}/classify_fuzz.cpp)
  target_link_libraries(classify_fuzz_replay PRIVATE omnibus_classify)
  add_test(NAME "fuzz_replay: classify corpus" COMMAND classify_fuzz_replay ${CMAKE_CURRENT_LIST_DIR}/corpus/classify)
  set_tests_properties("fuzz_replay: classify corpus" PROPERTIES LABELS unit TIMEOUT 120)
endif()
