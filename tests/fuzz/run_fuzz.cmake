# tests/fuzz/run_fuzz.cmake - runs one libFuzzer executable for ctest (cmake -P).
#
# Fuzz mode (-DFUZZER -DSEEDS -DWORK -DSECONDS [-DDICT]): copies the seed corpus into
# WORK/corpus (which keeps what earlier runs found), fuzzes it for SECONDS with leak
# detection, a 10 s per-input timeout and a 2 GiB RSS limit, writing reproducers to
# WORK/artifacts/ (emptied first). Fails, naming the reproducer, on any crash, leak,
# timeout or OOM.
# Replay mode (-DFUZZER -DREPLAY): runs every file of the REPLAY folder once.
if(NOT DEFINED ENV{UBSAN_OPTIONS})
  set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
endif()
if(NOT DEFINED ENV{ASAN_OPTIONS})
  set(ENV{ASAN_OPTIONS} "detect_leaks=1")
endif()
get_filename_component(target ${FUZZER} NAME)

if(DEFINED REPLAY)
  file(GLOB inputs LIST_DIRECTORIES false ${REPLAY}/*)
  list(FILTER inputs EXCLUDE REGEX "/README[^/]*$")
  if(NOT inputs)
    message(STATUS "${target}: no regression inputs in ${REPLAY}")
    return()
  endif()
  execute_process(COMMAND ${FUZZER} -timeout=10 -rss_limit_mb=2048 ${inputs}
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${target}: a regression input fails again (exit ${rc}); see above")
  endif()
  return()
endif()

file(REMOVE_RECURSE ${WORK}/artifacts) # a reproducer of this run is never mistaken for an old one
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(COPY ${SEEDS}/ DESTINATION ${WORK}/corpus)
set(args -max_total_time=${SECONDS} -rss_limit_mb=2048 -timeout=10 -detect_leaks=1
         -print_final_stats=1 -artifact_prefix=${WORK}/artifacts/)
if(DICT)
  list(APPEND args -dict=${DICT})
endif()
execute_process(COMMAND ${FUZZER} ${args} ${WORK}/corpus
                WORKING_DIRECTORY ${WORK}
                RESULT_VARIABLE rc)
file(GLOB found ${WORK}/artifacts/*)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${target}: libFuzzer exit ${rc}; reproducer: ${found}\n"
                      "replay: ${FUZZER} <file>; minimise: ${FUZZER} -minimize_crash=1 "
                      "-runs=10000 <file>")
endif()
