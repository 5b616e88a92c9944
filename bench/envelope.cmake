# bench_envelope: ns/op of envelope encode and decode (a typical ~500-byte
# inbound text message) and of id generation. Included from bench/CMakeLists.txt.
add_executable(bench_envelope ${CMAKE_CURRENT_LIST_DIR}/envelope_bench.cpp)
target_link_libraries(bench_envelope PRIVATE omnibus_envelope)
target_include_directories(bench_envelope PRIVATE ${PROJECT_SOURCE_DIR}/tests)
