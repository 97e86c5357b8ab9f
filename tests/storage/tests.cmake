# Long crash soak: the same kill -9 test as the default suite, with 500 kills.
# Run with: ctest --test-dir build -L soak
if(TARGET test_storage)
  add_test(NAME storage_crash_soak
           COMMAND test_storage --gtest_filter=CrashTest.KillNineKeepsEveryAcknowledgedSyncWrite)
  set_tests_properties(storage_crash_soak PROPERTIES
                       ENVIRONMENT "KAIZEN_CRASH_KILLS=500;${KAIZEN_TEST_ENV}"
                       LABELS "storage;soak" TIMEOUT 1800)
endif()
