# Soak: the LoRA learning test on all 216 synthetic facts (minutes on 2 cores). The
# default suite runs the same test on a slice (Learning.TinyQwen3LearnsCompanyFacts).
if(TARGET test_learning_train)
  add_test(NAME learning_train_all_facts
           COMMAND test_learning_train --gtest_also_run_disabled_tests --gtest_filter=Learning.DISABLED_AllFacts)
  set_tests_properties(learning_train_all_facts PROPERTIES LABELS "soak;train" TIMEOUT 3600
                       ENVIRONMENT "${KAIZEN_TEST_ENV}")
endif()
