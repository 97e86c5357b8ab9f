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
# The official OpenAI Node client, kaizenctl and raw sockets against the built kaizend
# (tiny demo model): greedy API text = `kaizenctl generate` text, the bad-input battery,
# restart and kill -9 with nothing logged lost.
find_program(KAIZEN_NODE node)
if(KAIZEN_NODE AND EXISTS ${KAIZEN_NPM_DIR}/openai/package.json AND TARGET kaizend AND TARGET kaizenctl)
  add_test(NAME e2e_kaizend_real_clients
           COMMAND ${KAIZEN_NODE} ${CMAKE_CURRENT_LIST_DIR}/kaizend_clients_test.cjs
                   $<TARGET_FILE:kaizend> $<TARGET_FILE:kaizenctl> ${KAIZEN_QWEN3_TOKENIZER_DIR})
  set_tests_properties(e2e_kaizend_real_clients PROPERTIES
                       ENVIRONMENT "${KAIZEN_TEST_ENV}" LABELS e2e TIMEOUT 300)
endif()
# Soak: the learning loop at the issue's scale (the seed facts + 215 generated records in one run
# while a client chats; ~15 min on 2 cores). LearningLoop is the default-suite version.
if(TARGET test_e2e)
  add_test(NAME e2e_learning_at_scale
           COMMAND test_e2e --gtest_also_run_disabled_tests
                   --gtest_filter=LearningAtScale.DISABLED_SeedFactsPlusGeneratedRecords)
  set_tests_properties(e2e_learning_at_scale PROPERTIES LABELS "soak;e2e" TIMEOUT 3000
                       ENVIRONMENT "${KAIZEN_TEST_ENV}")
  # Issue 15's proof: 50 tool-call examples taught through the API with every default.
  # Not yet timed on 2 cores, so it runs with the soaks until it is.
  add_test(NAME e2e_tool_learning
           COMMAND test_e2e --gtest_also_run_disabled_tests
                   --gtest_filter=ToolLearning.DISABLED_FiftyToolCallExamplesTeachTheDemoModelTheCompanysFunctions)
  set_tests_properties(e2e_tool_learning PROPERTIES LABELS "soak;e2e" TIMEOUT 1800
                       ENVIRONMENT "${KAIZEN_TEST_ENV}")
endif()
# Issue 18's service-level crash soak: kaizend under load killed -9 200 times (the default
# suite's ServiceCrash runs 4 kills).
if(TARGET test_e2e)
  add_test(NAME e2e_service_crash_soak
           COMMAND test_e2e --gtest_filter=ServiceCrash.KillNineUnderLoadLosesNothingAcknowledged)
  set_tests_properties(e2e_service_crash_soak PROPERTIES LABELS "soak;e2e" TIMEOUT 3600
                       ENVIRONMENT "KAIZEN_SERVICE_KILLS=200;${KAIZEN_TEST_ENV}")
endif()
# The README's quick start, as written: scripts/run.sh starts kaizend on the demo model, the
# README's quick-start block (kaizenctl demo, curl) runs against it with the defaults.
find_program(KAIZEN_CURL curl)
if(KAIZEN_CURL AND TARGET kaizend AND TARGET kaizenctl)
  add_test(NAME e2e_readme_quickstart
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/quickstart_test.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
  set_tests_properties(e2e_readme_quickstart PROPERTIES LABELS e2e TIMEOUT 600)
endif()
