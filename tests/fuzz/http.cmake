# http_response_fuzz: libFuzzer target for provider answers' header lines and
# Retry-After values (lib/http). Included by the fuzz CMake list; built only
# with -DOMNIBUS_FUZZ=ON and clang, e.g.
#   CXX=clang++ cmake -S . -B build-fuzz -DOMNIBUS_FUZZ=ON
#   cmake --build build-fuzz --target http_response_fuzz
#   build-fuzz/http_response_fuzz -max_total_time=60 -max_len=4096 \
#       /tmp/http-corpus tests/fuzz/corpus/http
if(OMNIBUS_FUZZ)
  add_executable(http_response_fuzz
    ${CMAKE_CURRENT_LIST_DIR}/http_response_fuzz.cpp
    ${PROJECT_SOURCE_DIR}/lib/http/response_head.cpp
    ${PROJECT_SOURCE_DIR}/lib/http/retry_after.cpp)
  target_include_directories(http_response_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/lib)
  target_compile_options(http_response_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
  target_link_options(http_response_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
endif()
