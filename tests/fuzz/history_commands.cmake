# history_commands_fuzz: libFuzzer target for the history commands and changelog entries the
# conversation stage reads (pipeline/history). Included by the fuzz CMake list; built only
# with -DOMNIBUS_FUZZ=ON and clang, e.g.
#   CXX=clang++ cmake -S . -B build-fuzz -DOMNIBUS_FUZZ=ON
#   cmake --build build-fuzz --target history_commands_fuzz
#   build-fuzz/history_commands_fuzz -max_total_time=60 -max_len=16384 \
#       /tmp/history-corpus tests/fuzz/corpus/history_commands
# The corpus is also replayed by the plain test "fuzz_replay: history_commands corpus".
if(OMNIBUS_FUZZ)
  add_executable(history_commands_fuzz
    ${CMAKE_CURRENT_LIST_DIR}/history_commands_fuzz.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/cloudevent.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/envelope.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/id.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/json.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/result.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/timestamp.cpp
    ${PROJECT_SOURCE_DIR}/pipeline/history/history_commands.cpp
    ${PROJECT_SOURCE_DIR}/pipeline/history/history_store.cpp)
  target_include_directories(history_commands_fuzz PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/lib)
  target_compile_definitions(history_commands_fuzz PRIVATE
    $<TARGET_PROPERTY:omnibus_envelope,INTERFACE_COMPILE_DEFINITIONS>)
  set(_history_ubsan_ignore ${CMAKE_CURRENT_BINARY_DIR}/history_commands_fuzz_ubsan_ignore.txt)
  file(WRITE ${_history_ubsan_ignore} "[undefined]\nfun:_ZN9rapidjson*\nfun:_ZNK9rapidjson*\n")
  target_compile_options(history_commands_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fsanitize-ignorelist=${_history_ubsan_ignore}
                         -fno-omit-frame-pointer -g)
  target_link_options(history_commands_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(history_commands_fuzz PRIVATE omnibus_rocksdb Threads::Threads)
endif()
