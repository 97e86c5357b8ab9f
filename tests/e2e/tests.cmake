# The e2e gtest binary reuses the daemon tests' raw HTTP client (no shared code with
# the server it checks).
if(TARGET test_e2e)
  target_sources(test_e2e PRIVATE ${CMAKE_SOURCE_DIR}/tests/daemon/http_client_util.cc
                                  ${CMAKE_SOURCE_DIR}/tests/daemon/fake_service_util.cc)
  target_include_directories(test_e2e PRIVATE ${CMAKE_SOURCE_DIR}/tests/daemon)
endif()
# kaizenctl_online_test.cc runs the built kaizenctl binary against an in-process kaizend.
if(TARGET test_e2e AND TARGET kaizenctl)
  add_dependencies(test_e2e kaizenctl)
endif()
# learner_crash_test.cc runs the built kaizend in a child process.
if(TARGET test_e2e AND TARGET kaizend)
  add_dependencies(test_e2e kaizend)
endif()
