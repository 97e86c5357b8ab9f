# tests/learning/text: the gtest binary comes from tests/CMakeLists.txt; it needs to find
# the source tree when run by hand, outside ctest.
if(TARGET test_learning_text)
  target_compile_definitions(test_learning_text PRIVATE
                             KAIZEN_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_link_libraries(test_learning_text PRIVATE nlohmann_json::nlohmann_json Threads::Threads)
endif()
