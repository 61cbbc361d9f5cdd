# recording_test.cmake — tests that record with a real LTTng session (tests/trace, tests/analysis), declared alike.
#
# hakmem_recording_test(LABEL <label> NAME <name> SCRIPT <file.py> [ARGS ...] [TIMEOUT s]) adds test <label>_<name>:
# the script (in the calling folder) runs with /usr/bin/python3 (the only interpreter that imports bt2) and
# --lib libhakmem-trace.so, exits 77 (skipped) only where lttng or bt2 is not installed, and takes the lock
# hakmem_lttng_sessiond: `hakmem-trace record` starts a private root lttng-sessiond when none runs and stops it
# afterwards, and root has only one (/var/run/lttng). HAKMEM_TRACE_COMPILED_EVENTS (a list, and its comma form in
# the tests' environment) names the events this build compiles in.
set(HAKMEM_RECORDING_PYTHON /usr/bin/python3 CACHE FILEPATH "Python for the recording tests (must import bt2)")

set(HAKMEM_TRACE_COMPILED_EVENTS "")
foreach(def IN LISTS HAKMEM_TRACE_DEFINITIONS)
  if(def MATCHES "^HAKMEM_TRACE_EVENT_([a-z_]+)=1$")
    list(APPEND HAKMEM_TRACE_COMPILED_EVENTS ${CMAKE_MATCH_1})
  endif()
endforeach()
string(JOIN "," HAKMEM_TRACE_COMPILED_EVENTS_CSV ${HAKMEM_TRACE_COMPILED_EVENTS})

function(hakmem_recording_test)
  cmake_parse_arguments(T "" "LABEL;NAME;SCRIPT;TIMEOUT" "ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${T_LABEL}_${T_NAME}
           COMMAND ${HAKMEM_RECORDING_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/${T_SCRIPT} --lib $<TARGET_FILE:hakmem>
                   ${T_ARGS})
  set_tests_properties(${T_LABEL}_${T_NAME} PROPERTIES
                       LABELS "${T_LABEL}" SKIP_RETURN_CODE 77 TIMEOUT ${T_TIMEOUT}
                       RESOURCE_LOCK hakmem_lttng_sessiond
                       ENVIRONMENT "HAKMEM_TRACE_LIB=$<TARGET_FILE:hakmem>;HAKMEM_TRACE_COMPILED_EVENTS=${HAKMEM_TRACE_COMPILED_EVENTS_CSV};PYTHONDONTWRITEBYTECODE=1")
endfunction()
