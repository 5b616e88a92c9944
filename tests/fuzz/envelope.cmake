# envelope_fuzz: libFuzzer target for the envelope decoder. Included by the
# fuzz CMake list; built only with -DOMNIBUS_FUZZ=ON and clang, e.g.
#   CXX=clang++ cmake -S . -B build-fuzz -DOMNIBUS_FUZZ=ON
#   cmake --build build-fuzz --target envelope_fuzz
#   build-fuzz/envelope_fuzz -max_total_time=60 -max_len=65536 \
#       /tmp/envelope-corpus tests/fuzz/corpus/envelope
# (new inputs go to the first directory; copy the interesting ones back.)
# The codec's sources are compiled into the target itself so that they carry
# the coverage instrumentation; the corpus is also replayed by unit_envelope.
if(OMNIBUS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "OMNIBUS_FUZZ needs clang++ (libFuzzer): configure with CXX=clang++")
  endif()
  add_executable(envelope_fuzz
    ${CMAKE_CURRENT_LIST_DIR}/envelope_fuzz.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/cloudevent.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/envelope.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/id.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/json.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/result.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/timestamp.cpp)
  target_include_directories(envelope_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/lib)
  target_compile_definitions(envelope_fuzz PRIVATE
    $<TARGET_PROPERTY:omnibus_envelope,INTERFACE_COMPILE_DEFINITIONS>)
  # UBSan is on for our code; RapidJSON 1.1.0 computes null + n in its
  # internal stack before the first allocation (benign, fixed upstream later),
  # so its own functions are left out of the UB checks (ASan still covers them).
  set(_envelope_ubsan_ignore ${CMAKE_CURRENT_BINARY_DIR}/envelope_fuzz_ubsan_ignore.txt)
  file(WRITE ${_envelope_ubsan_ignore} "[undefined]\nfun:_ZN9rapidjson*\nfun:_ZNK9rapidjson*\n")
  target_compile_options(envelope_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fsanitize-ignorelist=${_envelope_ubsan_ignore}
                         -fno-omit-frame-pointer -g)
  target_link_options(envelope_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(envelope_fuzz PRIVATE Threads::Threads)
endif()
