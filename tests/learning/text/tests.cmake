# tests/learning/text: the gtest binary comes from tests/CMakeLists.txt; it needs to find
# the source tree when run by hand, outside ctest.
if(TARGET test_learning_text)
  target_compile_definitions(test_learning_text PRIVATE
                             KAIZEN_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_link_libraries(test_learning_text PRIVATE nlohmann_json::nlohmann_json Threads::Threads)
endif()

# kaizenctl tokenize/detokenize end to end (needs the daemon build for kaizenctl).
if(TARGET kaizenctl)
  add_test(NAME kaizenctl_tokenize
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/kaizenctl_tokenize_test.sh)
  set_tests_properties(kaizenctl_tokenize PROPERTIES ENVIRONMENT "${KAIZEN_TEST_ENV}"
                       LABELS "text" TIMEOUT 120)
endif()
