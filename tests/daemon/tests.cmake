# tests/daemon extras: the test-only server binary (real Server + FakeService), the
# OpenAI Node client test and systemd unit checks (the request fuzzer is in tests/fuzz/).
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

# Requests/s of the HTTP layer with the fake engine (label bench: not in the default run).
if(KAIZEN_NODE)
  add_test(NAME daemon_http_load
           COMMAND ${KAIZEN_NODE} ${KAIZEN_DAEMON_TEST_DIR}/http_load.cjs
                   $<TARGET_FILE:kaizen_fake_server> 3 8)
  set_tests_properties(daemon_http_load PROPERTIES LABELS "daemon;bench" TIMEOUT 120)
endif()
