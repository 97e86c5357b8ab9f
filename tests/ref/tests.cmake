# Self-tests of the Python reference implementation in tools/ref (the peer that the
# C++ model, adapter and trainer tests compare against). Runs in a few seconds.
add_test(NAME ref_selftest
         COMMAND ${KAIZEN_REF_PYTHON} -m unittest discover -s ${CMAKE_SOURCE_DIR}/tools/ref/tests
                 -t ${CMAKE_SOURCE_DIR}/tools/ref)
set_tests_properties(ref_selftest PROPERTIES
                     LABELS ref
                     TIMEOUT 300
                     ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1;${KAIZEN_TEST_ENV}")
