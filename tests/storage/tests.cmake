# Long crash soak: the same kill -9 test as the default suite, with 500 kills.
# Run with: ctest --test-dir build -L soak
if(TARGET test_storage)
  add_test(NAME storage_crash_soak
           COMMAND test_storage --gtest_filter=CrashTest.KillNineKeepsEveryAcknowledgedSyncWrite)
  set_tests_properties(storage_crash_soak PROPERTIES
                       ENVIRONMENT "KAIZEN_CRASH_KILLS=500;${KAIZEN_TEST_ENV}"
                       LABELS "storage;soak" TIMEOUT 1800)
endif()

# kaizenctl db backup / restore / verify / import, end to end.
if(TARGET kaizenctl)
  add_test(NAME storage_kaizenctl_db
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/kaizenctl_db_test.sh)
  set_tests_properties(storage_kaizenctl_db PROPERTIES ENVIRONMENT "${KAIZEN_TEST_ENV}"
                       LABELS "storage" TIMEOUT 120)
endif()
