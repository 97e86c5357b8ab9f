# tests/learning/generate: the constrained-decoding tests check answers with the Python
# jsonschema peer through the grammar tests' helpers.
if(TARGET test_learning_generate)
  target_sources(test_learning_generate PRIVATE ${CMAKE_SOURCE_DIR}/tests/learning/grammar/grammar_test_util.cc)
  # Soak: the issue's proof at full size, 200 random schemas x 3 (seed, temperature) on the
  # demo model (48 s on 2 cores); Constrained.RandomSchemasOnTheDemoModel is the
  # default-suite version (24 schemas).
  add_test(NAME generate_constrained_random_schemas
           COMMAND test_learning_generate --gtest_also_run_disabled_tests
                   --gtest_filter=Constrained.DISABLED_TwoHundredRandomSchemasOnTheDemoModel)
  set_tests_properties(generate_constrained_random_schemas PROPERTIES LABELS "soak;generate" TIMEOUT 3000
                       ENVIRONMENT "${KAIZEN_TEST_ENV}")
endif()
