# tests/daemon extras: the test-only server binary (real Server + FakeService), the
# OpenAI Node client test, systemd unit checks and the chat-request fuzzer.
set(KAIZEN_DAEMON_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

# kaizen_fake_server: never installed; used by process_test.cc and the Node test.
add_executable(kaizen_fake_server ${KAIZEN_DAEMON_TEST_DIR}/fake_server_main.cc
                                  ${KAIZEN_DAEMON_TEST_DIR}/fake_service_util.cc)
target_include_directories(kaizen_fake_server PRIVATE ${KAIZEN_DAEMON_TEST_DIR})
target_link_libraries(kaizen_fake_server PRIVATE kaizen_daemon)
set_target_properties(kaizen_fake_server PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                    ${CMAKE_BINARY_DIR}/tests)
if(TARGET test_daemon)
  add_dependencies(test_daemon kaizen_fake_server)
  if(TARGET kaizend)
    add_dependencies(test_daemon kaizend)
  endif()
endif()

find_program(KAIZEN_NODE node)
if(KAIZEN_NODE AND EXISTS ${KAIZEN_NPM_DIR}/openai/package.json)
  add_test(NAME daemon_openai_node_client
           COMMAND ${KAIZEN_NODE} ${KAIZEN_DAEMON_TEST_DIR}/openai_client_test.cjs
                   $<TARGET_FILE:kaizen_fake_server>)
  set_tests_properties(daemon_openai_node_client PROPERTIES
                       ENVIRONMENT "${KAIZEN_TEST_ENV}" LABELS daemon TIMEOUT 120)
endif()

# systemd: `systemd-analyze verify` on the shipped units (ExecStart pointed at the built
# kaizend) and the offline `systemd-analyze security` exposure score.
find_program(KAIZEN_SYSTEMD_ANALYZE systemd-analyze)
if(KAIZEN_SYSTEMD_ANALYZE AND TARGET kaizend)
  add_test(NAME daemon_systemd_units
           COMMAND ${KAIZEN_DAEMON_TEST_DIR}/systemd_units_test.sh ${CMAKE_SOURCE_DIR}/systemd
                   $<TARGET_FILE:kaizend> ${CMAKE_BINARY_DIR}/systemd-test)
  set_tests_properties(daemon_systemd_units PROPERTIES LABELS daemon TIMEOUT 120)
endif()

# Fuzzing: libFuzzer with clang when it links; else a g++ corpus replayer.
# The request parsers and what they call: the JSON-schema compiler is fuzzed through
# response_format and tools.
set(KAIZEN_FUZZ_SOURCES ${KAIZEN_DAEMON_TEST_DIR}/fuzz_chat_request.cc
                        ${CMAKE_SOURCE_DIR}/daemon/http/openai_json.cc
                        ${CMAKE_SOURCE_DIR}/daemon/http/openai_request.cc
                        ${CMAKE_SOURCE_DIR}/daemon/http/openai_tools.cc
                        ${CMAKE_SOURCE_DIR}/daemon/http/json_fields.cc
                        ${CMAKE_SOURCE_DIR}/daemon/service.cc
                        ${CMAKE_SOURCE_DIR}/learning/grammar/grammar.cc
                        ${CMAKE_SOURCE_DIR}/learning/grammar/json_rules.cc
                        ${CMAKE_SOURCE_DIR}/learning/grammar/json_schema.cc)
find_program(KAIZEN_CLANGXX clang++)
set(KAIZEN_LIBFUZZER OFF)
if(KAIZEN_CLANGXX)
  file(WRITE ${CMAKE_BINARY_DIR}/fuzz_probe.cc
       "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t){return 0;}\n")
  execute_process(COMMAND ${KAIZEN_CLANGXX} -fsanitize=fuzzer ${CMAKE_BINARY_DIR}/fuzz_probe.cc
                          -o ${CMAKE_BINARY_DIR}/fuzz_probe
                  RESULT_VARIABLE fuzz_probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(fuzz_probe_rc EQUAL 0)
    set(KAIZEN_LIBFUZZER ON)
  endif()
endif()
set(KAIZEN_FUZZ_BIN ${CMAKE_BINARY_DIR}/tests/fuzz_chat_request)
if(KAIZEN_LIBFUZZER)
  add_custom_command(
    OUTPUT ${KAIZEN_FUZZ_BIN}
    COMMAND ${KAIZEN_CLANGXX} -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined
            -fno-sanitize-recover=undefined -I${CMAKE_SOURCE_DIR} ${KAIZEN_FUZZ_SOURCES}
            -o ${KAIZEN_FUZZ_BIN}
    DEPENDS ${KAIZEN_FUZZ_SOURCES} ${CMAKE_SOURCE_DIR}/daemon/http/openai_json.h
            ${CMAKE_SOURCE_DIR}/daemon/http/openai_tools.h ${CMAKE_SOURCE_DIR}/daemon/http/json_fields.h
            ${CMAKE_SOURCE_DIR}/daemon/service.h ${CMAKE_SOURCE_DIR}/daemon/config.h
    COMMENT "Building libFuzzer target fuzz_chat_request (clang)")
  add_custom_target(fuzz_chat_request ALL DEPENDS ${KAIZEN_FUZZ_BIN})
  # ~20 s of fuzzing in the default suite; the seeds live in the source tree, new inputs in
  # the build tree.
  add_test(NAME daemon_fuzz_chat_request
           COMMAND sh -c "mkdir -p ${CMAKE_BINARY_DIR}/fuzz_chat_request_corpus && exec ${KAIZEN_FUZZ_BIN} -max_total_time=20 -rss_limit_mb=2048 -max_len=8192 -timeout=10 ${CMAKE_BINARY_DIR}/fuzz_chat_request_corpus ${KAIZEN_DAEMON_TEST_DIR}/fuzz_corpus")
  set_tests_properties(daemon_fuzz_chat_request PROPERTIES LABELS "daemon;fuzz" TIMEOUT 120)
else()
  add_executable(fuzz_chat_request ${KAIZEN_FUZZ_SOURCES})
  target_compile_definitions(fuzz_chat_request PRIVATE KAIZEN_FUZZ_REPLAY_MAIN)
  target_include_directories(fuzz_chat_request PRIVATE ${CMAKE_SOURCE_DIR})
  target_link_libraries(fuzz_chat_request PRIVATE nlohmann_json::nlohmann_json Boost::headers)
  set_target_properties(fuzz_chat_request PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                     ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME daemon_fuzz_chat_request
           COMMAND fuzz_chat_request ${KAIZEN_DAEMON_TEST_DIR}/fuzz_corpus)
  set_tests_properties(daemon_fuzz_chat_request PROPERTIES LABELS "daemon;fuzz" TIMEOUT 60)
endif()

# Requests/s of the HTTP layer with the fake engine (label bench: not in the default run).
if(KAIZEN_NODE)
  add_test(NAME daemon_http_load
           COMMAND ${KAIZEN_NODE} ${KAIZEN_DAEMON_TEST_DIR}/http_load.cjs
                   $<TARGET_FILE:kaizen_fake_server> 3 8)
  set_tests_properties(daemon_http_load PROPERTIES LABELS "daemon;bench" TIMEOUT 120)
endif()
