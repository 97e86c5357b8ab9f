# Fuzzing: one libFuzzer target per parser that reads bytes kaizen should not trust
# (downloaded model files, JSONL knowledge, config, HTTP bodies, stored records).
#
# With clang and libclang-rt (scripts/install-deps.sh installs both) each target is built
# with -fsanitize=fuzzer,address,undefined from the parser's own sources, so the parser
# itself is instrumented. The default suite fuzzes each for KAIZEN_FUZZ_SECONDS from the
# seeds in tests/fuzz/corpus/<target>/ (new inputs go to the build tree); the `soak`
# label runs each for 1,000,000 executions. Without a working libFuzzer each target is a
# g++ program that replays its seeds (same invariants, no search).
#
# A crash found by fuzzing becomes a file in the target's corpus folder: the default
# suite then replays it on every run.
set(KAIZEN_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
set(KAIZEN_FUZZ_SECONDS 15 CACHE STRING "seconds each fuzz target runs in the default suite")

find_program(KAIZEN_CLANGXX clang++)
set(KAIZEN_LIBFUZZER OFF)
if(KAIZEN_CLANGXX)
  file(WRITE ${CMAKE_BINARY_DIR}/fuzz_probe.cc
       "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t){return 0;}\n")
  execute_process(COMMAND ${KAIZEN_CLANGXX} -fsanitize=fuzzer,address,undefined
                          ${CMAKE_BINARY_DIR}/fuzz_probe.cc -o ${CMAKE_BINARY_DIR}/fuzz_probe
                  RESULT_VARIABLE fuzz_probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(fuzz_probe_rc EQUAL 0)
    set(KAIZEN_LIBFUZZER ON)
  endif()
endif()

# Any header of the layers the targets compile; a change rebuilds the fuzzers.
file(GLOB_RECURSE KAIZEN_FUZZ_HEADERS CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/learning/*.h ${CMAKE_SOURCE_DIR}/storage/*.h
     ${CMAKE_SOURCE_DIR}/daemon/*.h ${KAIZEN_FUZZ_DIR}/*.h)
file(GLOB KAIZEN_FUZZ_TEXT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/learning/text/*.cc)

set(KAIZEN_FUZZ_FLAGS -std=c++17 -O1 -g1 -fno-sanitize-recover=undefined -I${CMAKE_SOURCE_DIR})

# kaizen_fuzz_library(<name> SOURCES <sources...>): sources that several targets share,
# compiled once (instrumented, -fsanitize=fuzzer-no-link) into fuzz_lib/lib<name>.a.
function(kaizen_fuzz_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  if(NOT KAIZEN_LIBFUZZER)
    return()
  endif()
  set(dir ${CMAKE_BINARY_DIR}/fuzz_lib/${name})
  set(lib ${CMAKE_BINARY_DIR}/fuzz_lib/lib${name}.a)
  add_custom_command(
    OUTPUT ${lib}
    COMMAND ${CMAKE_COMMAND} -E rm -rf ${dir} ${lib}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND ${CMAKE_COMMAND} -E chdir ${dir} ${KAIZEN_CLANGXX} ${KAIZEN_FUZZ_FLAGS}
            -fsanitize=fuzzer-no-link,address,undefined -c ${ARG_SOURCES}
    COMMAND sh -c "ar rcs ${lib} ${dir}/*.o"
    DEPENDS ${ARG_SOURCES} ${KAIZEN_FUZZ_HEADERS}
    COMMENT "Building fuzz library ${name} (clang, ASan + UBSan)")
  add_custom_target(fuzz_lib_${name} DEPENDS ${lib})
  set_property(GLOBAL PROPERTY KAIZEN_FUZZ_LIB_SOURCES_${name} ${ARG_SOURCES})
endfunction()

# kaizen_fuzz_target(<name> [SOURCES <parser sources...>] [FUZZ_LIBS <libraries...>]
#                    [LINK <-l flags...>] [TARGETS <cmake targets for the replayer>]
#                    [MAX_LEN n])
# Target tests/fuzz/fuzz_<name>.cc, seeds in tests/fuzz/corpus/<name>/, ctest names
# fuzz_<name> (default suite) and fuzz_<name>_soak (label soak).
function(kaizen_fuzz_target name)
  cmake_parse_arguments(ARG "" "MAX_LEN" "SOURCES;FUZZ_LIBS;LINK;TARGETS" ${ARGN})
  if(NOT ARG_MAX_LEN)
    set(ARG_MAX_LEN 4096)
  endif()
  set(exe fuzz_${name})
  set(srcs ${KAIZEN_FUZZ_DIR}/${exe}.cc ${ARG_SOURCES})
  set(bin ${CMAKE_BINARY_DIR}/tests/${exe})
  set(seeds ${KAIZEN_FUZZ_DIR}/corpus/${name})
  if(KAIZEN_LIBFUZZER)
    # A library is built by its own target (ordered by add_dependencies); the executable
    # depends on the library's sources, not its file, so that no two targets own the
    # library's rule (parallel makes would race on it).
    set(libs)
    set(lib_sources)
    foreach(l ${ARG_FUZZ_LIBS})
      list(APPEND libs ${CMAKE_BINARY_DIR}/fuzz_lib/lib${l}.a)
      get_property(s GLOBAL PROPERTY KAIZEN_FUZZ_LIB_SOURCES_${l})
      list(APPEND lib_sources ${s})
    endforeach()
    add_custom_command(
      OUTPUT ${bin}
      COMMAND ${KAIZEN_CLANGXX} ${KAIZEN_FUZZ_FLAGS} -fsanitize=fuzzer,address,undefined
              ${srcs} ${libs} ${ARG_LINK} -o ${bin}
      DEPENDS ${srcs} ${lib_sources} ${KAIZEN_FUZZ_HEADERS}
      COMMENT "Building libFuzzer target ${exe} (clang, ASan + UBSan)")
    add_custom_target(${exe} ALL DEPENDS ${bin})
    foreach(l ${ARG_FUZZ_LIBS})
      add_dependencies(${exe} fuzz_lib_${l})
    endforeach()
    # New inputs go to build/fuzz_corpus/<name>/, crash inputs to build/fuzz_crashes/.
    set(work ${CMAKE_BINARY_DIR}/fuzz_corpus/${name})
    set(crashes ${CMAKE_BINARY_DIR}/fuzz_crashes)
    set(flags -rss_limit_mb=2048 -max_len=${ARG_MAX_LEN} -timeout=10 -print_final_stats=1
              -artifact_prefix=${crashes}/${name}-)
    set(mk "mkdir -p ${work} ${crashes}")
    add_test(NAME fuzz_${name}
             COMMAND sh -c "${mk} && exec ${bin} -max_total_time=${KAIZEN_FUZZ_SECONDS} ${flags} ${work} ${seeds}")
    add_test(NAME fuzz_${name}_soak
             COMMAND sh -c "${mk} && exec ${bin} -runs=1000000 ${flags} ${work} ${seeds}")
    set_tests_properties(fuzz_${name}_soak PROPERTIES LABELS "fuzz;soak" TIMEOUT 7200
                         ENVIRONMENT "${KAIZEN_TEST_ENV}")
    set(timeout 120)
  else()
    add_executable(${exe} ${srcs} ${KAIZEN_FUZZ_DIR}/replay_main.cc)
    target_include_directories(${exe} PRIVATE ${CMAKE_SOURCE_DIR})
    target_link_libraries(${exe} PRIVATE ${ARG_TARGETS})
    set_target_properties(${exe} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
    add_test(NAME fuzz_${name} COMMAND ${exe} ${seeds})
    set(timeout 60)
  endif()
  set_tests_properties(fuzz_${name} PROPERTIES LABELS fuzz TIMEOUT ${timeout}
                       ENVIRONMENT "${KAIZEN_TEST_ENV}")
endfunction()

# Model files from the internet: safetensors header + tensor table and the shard index,
# config.json, tokenizer.json (and encode/decode of arbitrary bytes), chat templates.
kaizen_fuzz_library(text SOURCES ${KAIZEN_FUZZ_TEXT_SOURCES})
kaizen_fuzz_library(records SOURCES ${CMAKE_SOURCE_DIR}/storage/records.cc
                                    ${CMAKE_SOURCE_DIR}/storage/sha256.cc
                                    ${CMAKE_SOURCE_DIR}/storage/status.cc)
kaizen_fuzz_target(safetensors MAX_LEN 8192
                   SOURCES ${CMAKE_SOURCE_DIR}/learning/model/safetensors_header.cc
                   TARGETS nlohmann_json::nlohmann_json)
kaizen_fuzz_target(model_config
                   SOURCES ${CMAKE_SOURCE_DIR}/learning/model/config.cc
                   TARGETS nlohmann_json::nlohmann_json)
kaizen_fuzz_target(tokenizer MAX_LEN 8192 FUZZ_LIBS text LINK -lpcre2-8 -licuuc
                   TARGETS kaizen_text)
kaizen_fuzz_target(chat_template FUZZ_LIBS text LINK -lpcre2-8 -licuuc TARGETS kaizen_text)
# Knowledge files and what the store holds.
kaizen_fuzz_target(chat_line SOURCES ${CMAKE_SOURCE_DIR}/storage/chat_line.cc
                   FUZZ_LIBS records TARGETS kaizen_storage)
kaizen_fuzz_target(records FUZZ_LIBS records TARGETS kaizen_storage)
# adapter_config.json + the adapter's tensor table against a model (learning/adapter's
# torch-free half).
set(KAIZEN_FUZZ_PEFT_SOURCES ${CMAKE_SOURCE_DIR}/learning/adapter/peft_config.cc
    ${CMAKE_SOURCE_DIR}/learning/adapter/target.cc ${CMAKE_SOURCE_DIR}/learning/model/config.cc
    ${CMAKE_SOURCE_DIR}/learning/model/safetensors_header.cc)
kaizen_fuzz_target(peft MAX_LEN 8192 SOURCES ${KAIZEN_FUZZ_PEFT_SOURCES} LINK -lpcre2-8
                   TARGETS nlohmann_json::nlohmann_json PkgConfig::PCRE2)
if(KAIZEN_BUILD_DAEMON)
  # kaizend.conf, and the HTTP requests (framing through Beast, then the chat,
  # completions and feedback parsers with the JSON-schema compiler behind them, and the
  # admin routes' typed argument parsers).
  kaizen_fuzz_target(config
                     SOURCES ${CMAKE_SOURCE_DIR}/daemon/config.cc
                             ${CMAKE_SOURCE_DIR}/daemon/config_keys.cc
                     LINK -lboost_program_options
                     TARGETS Boost::program_options Boost::headers)
  kaizen_fuzz_target(chat_request MAX_LEN 8192
                     SOURCES ${CMAKE_SOURCE_DIR}/daemon/http/openai_json.cc
                             ${CMAKE_SOURCE_DIR}/daemon/http/openai_request.cc
                             ${CMAKE_SOURCE_DIR}/daemon/http/openai_tools.cc
                             ${CMAKE_SOURCE_DIR}/daemon/http/json_fields.cc
                             ${CMAKE_SOURCE_DIR}/daemon/service.cc
                             ${CMAKE_SOURCE_DIR}/daemon/serve/params.cc
                             ${CMAKE_SOURCE_DIR}/learning/grammar/grammar.cc
                             ${CMAKE_SOURCE_DIR}/learning/grammar/json_rules.cc
                             ${CMAKE_SOURCE_DIR}/learning/grammar/json_schema.cc
                     TARGETS nlohmann_json::nlohmann_json Boost::headers)
endif()
