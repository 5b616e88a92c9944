# route_rules_fuzz and handoff_fuzz: libFuzzer targets for the routing rules parser and
# the stored handoff state (pipeline/route). Included by the fuzz CMake list; built only
# with -DOMNIBUS_FUZZ=ON and clang, e.g.
#   CXX=clang++ cmake -S . -B build-fuzz -DOMNIBUS_FUZZ=ON
#   cmake --build build-fuzz --target route_rules_fuzz handoff_fuzz
#   build-fuzz/tests/fuzz/route_rules_fuzz -max_total_time=60 -max_len=8192 \
#       -dict=tests/fuzz/route_rules.dict /tmp/route-corpus tests/fuzz/corpus/route_rules
#   build-fuzz/tests/fuzz/handoff_fuzz -max_total_time=60 /tmp/handoff-corpus tests/fuzz/corpus/handoff
# The corpora are also replayed by the plain tests "fuzz_replay: route_rules corpus" and
# "fuzz_replay: handoff corpus". The library's sources are compiled into each fuzzer so
# they get the coverage instrumentation and the sanitizers.
if(OMNIBUS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(WARNING "OMNIBUS_FUZZ needs clang (libFuzzer); the route fuzzers are not built with ${CMAKE_CXX_COMPILER_ID}")
  else()
    set(_route_sources "")
    foreach(_lib omnibus_route omnibus_config omnibus_envelope)
      get_target_property(_dir ${_lib} SOURCE_DIR)
      get_target_property(_sources ${_lib} SOURCES)
      foreach(_source IN LISTS _sources)
        cmake_path(ABSOLUTE_PATH _source BASE_DIRECTORY "${_dir}" OUTPUT_VARIABLE _path)
        list(APPEND _route_sources "${_path}")
      endforeach()
    endforeach()
    # RapidJSON 1.1's stack does pointer arithmetic on null (to_json); not ours to fix.
    set(_route_ubsan_ignore ${CMAKE_CURRENT_BINARY_DIR}/route_fuzz_ubsan_ignore.txt)
    file(WRITE ${_route_ubsan_ignore} "[undefined]\nfun:_ZN9rapidjson*\nfun:_ZNK9rapidjson*\n")
    foreach(_fuzz route_rules_fuzz handoff_fuzz)
      if(_fuzz STREQUAL "handoff_fuzz")
        add_executable(${_fuzz} ${CMAKE_CURRENT_LIST_DIR}/${_fuzz}.cpp ${PROJECT_SOURCE_DIR}/pipeline/route/handoff.cpp)
      else()
        add_executable(${_fuzz} ${CMAKE_CURRENT_LIST_DIR}/${_fuzz}.cpp ${_route_sources})
        target_link_libraries(${_fuzz} PRIVATE yaml-cpp omnibus_log PkgConfig::RE2 ${CCTZ_LIBRARY})
        target_include_directories(${_fuzz} SYSTEM PRIVATE ${RAPIDJSON_INCLUDE_DIR} ${CCTZ_INCLUDE_DIR})
        target_compile_definitions(${_fuzz} PRIVATE
          $<TARGET_PROPERTY:omnibus_envelope,INTERFACE_COMPILE_DEFINITIONS>)
      endif()
      target_include_directories(${_fuzz} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/lib
                                 ${PROJECT_BINARY_DIR}/pipeline/route)
      target_compile_options(${_fuzz} PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
                             -fsanitize-ignorelist=${_route_ubsan_ignore} -fno-omit-frame-pointer -g)
      target_link_options(${_fuzz} PRIVATE -fsanitize=fuzzer,address,undefined)
    endforeach()
  endif()
endif()
