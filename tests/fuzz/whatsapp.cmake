# whatsapp_codec_fuzz: libFuzzer target for the WhatsApp webhook codec and the
# Graph API response parser. Included by the fuzz CMake list; built only with
# -DOMNIBUS_FUZZ=ON and clang, e.g.
#   CXX=clang++ cmake -S . -B build-fuzz -DOMNIBUS_FUZZ=ON
#   cmake --build build-fuzz --target whatsapp_codec_fuzz
#   build-fuzz/whatsapp_codec_fuzz -max_total_time=60 -max_len=65536 \
#       /tmp/whatsapp-corpus tests/fuzz/corpus/whatsapp
# (new inputs go to the first directory; copy the interesting ones back.)
# The sources under test are compiled into the target itself so that they
# carry the coverage instrumentation; the corpus is also replayed by unit_whatsapp.
if(OMNIBUS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "OMNIBUS_FUZZ needs clang++ (libFuzzer): configure with CXX=clang++")
  endif()
  # PHONENUMBER_INCLUDE_DIR / PHONENUMBER_LIBRARY: found by lib/phone/CMakeLists.txt.
  add_executable(whatsapp_codec_fuzz
    ${CMAKE_CURRENT_LIST_DIR}/whatsapp_codec_fuzz.cpp
    ${PROJECT_SOURCE_DIR}/connectors/whatsapp/delivery_status.cpp
    ${PROJECT_SOURCE_DIR}/connectors/whatsapp/whatsapp_codec.cpp
    ${PROJECT_SOURCE_DIR}/connectors/whatsapp/whatsapp_graph.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/cloudevent.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/envelope.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/id.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/json.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/result.cpp
    ${PROJECT_SOURCE_DIR}/lib/envelope/timestamp.cpp
    ${PROJECT_SOURCE_DIR}/lib/phone/phone_normalizer.cpp)
  target_include_directories(whatsapp_codec_fuzz PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/lib)
  target_include_directories(whatsapp_codec_fuzz SYSTEM PRIVATE ${PHONENUMBER_INCLUDE_DIR})
  target_compile_definitions(whatsapp_codec_fuzz PRIVATE
    $<TARGET_PROPERTY:omnibus_envelope,INTERFACE_COMPILE_DEFINITIONS>)
  # As for envelope_fuzz: RapidJSON 1.1.0's internal stack computes null + n
  # before its first allocation (benign), so its functions skip the UB checks.
  set(_whatsapp_ubsan_ignore ${CMAKE_CURRENT_BINARY_DIR}/whatsapp_fuzz_ubsan_ignore.txt)
  file(WRITE ${_whatsapp_ubsan_ignore} "[undefined]\nfun:_ZN9rapidjson*\nfun:_ZNK9rapidjson*\n")
  target_compile_options(whatsapp_codec_fuzz PRIVATE -fsanitize=fuzzer,address,undefined
                         -fno-sanitize-recover=undefined -fsanitize-ignorelist=${_whatsapp_ubsan_ignore}
                         -fno-omit-frame-pointer -g)
  target_link_options(whatsapp_codec_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(whatsapp_codec_fuzz PRIVATE ${PHONENUMBER_LIBRARY} OpenSSL::Crypto Threads::Threads)
endif()
