# identity_set_fuzz: libFuzzer target for what an inbound message links
# automatically (pipeline/identity/identity_set.h). Included by the fuzz CMake
# list; built only with -DOMNIBUS_FUZZ=ON and clang, e.g.
#   CXX=clang++ cmake -S . -B build-fuzz -DOMNIBUS_FUZZ=ON
#   cmake --build build-fuzz --target identity_set_fuzz
#   build-fuzz/identity_set_fuzz -max_total_time=60 -max_len=16384 \
#       /tmp/identity-set-corpus tests/fuzz/corpus/identity_set
# (new inputs go to the first directory; copy the interesting ones back.)
# The sources under test are compiled into the target itself so that they
# carry the coverage instrumentation; the corpus is also replayed by the plain
# test "fuzz_replay: identity_set corpus".
if(OMNIBUS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "OMNIBUS_FUZZ needs clang++ (libFuzzer): configure with CXX=clang++")
  endif()
  # PHONENUMBER_INCLUDE_DIR / PHONENUMBER_LIBRARY: found by lib/phone/CMakeLists.txt.
  add_executable(identity_set_fuzz
    ${CMAKE_CURRENT_LIST_DIR}/identity_set_fuzz.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/cloudevent.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/envelope.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/id.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/json.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/result.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/timestamp.cpp
    ${PROJECT_SOURCE_DIR}/lib/phone/phone_normalizer.cpp
    ${PROJECT_SOURCE_DIR}/pipeline/identity/identity.cpp
    ${PROJECT_SOURCE_DIR}/pipeline/identity/identity_set.cpp)
  target_include_directories(identity_set_fuzz PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/lib)
  target_include_directories(identity_set_fuzz SYSTEM PRIVATE ${PHONENUMBER_INCLUDE_DIR})
  target_compile_definitions(identity_set_fuzz PRIVATE
    $<TARGET_PROPERTY:omnibus_envelope,INTERFACE_COMPILE_DEFINITIONS>)
  # As for envelope_fuzz: RapidJSON 1.1.0's internal stack computes null + n
  # before its first allocation (benign), so its functions skip the UB checks.
  set(_identity_set_ubsan_ignore ${CMAKE_CURRENT_BINARY_DIR}/identity_set_fuzz_ubsan_ignore.txt)
  file(WRITE ${_identity_set_ubsan_ignore} "[undefined]\nfun:_ZN9rapidjson*\nfun:_ZNK9rapidjson*\n")
  target_compile_options(identity_set_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fsanitize-ignorelist=${_identity_set_ubsan_ignore}
                         -fno-omit-frame-pointer -g)
  target_link_options(identity_set_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(identity_set_fuzz PRIVATE ${PHONENUMBER_LIBRARY} Threads::Threads)
endif()
