# The Babeltrace2 plugin and timeline tests (label "analysis"), included from tests/analysis/CMakeLists.txt in
# tracing builds. Both record the capped trace_oom_workload of tests/trace (4 threads x 3 NULLs = 12 OOMs), so both
# take the lock hakmem_lttng_sessiond; both run with /usr/bin/python3 (bt2) and exit 77 only where lttng, bt2,
# babeltrace2's Python plugin provider (test_plugin) or chromium (test_timeline, after checking the picture's
# structure; as root with CI=true it installs Debian's chromium itself) is not installed.
#   analysis_plugin    babeltrace2 -c sink.hakmem.oom-paths / summary [-p json=yes] print what hakmem-trace prints
#   analysis_timeline  hakmem-trace timeline -o .html/.svg: lanes, OOM markers, self-contained; headless Chromium
if(HAKMEM_OVERRIDE)
  set(hakmem_pt_events "")
  foreach(def IN LISTS HAKMEM_TRACE_DEFINITIONS)
    if(def MATCHES "^HAKMEM_TRACE_EVENT_([a-z_]+)=1$")
      list(APPEND hakmem_pt_events ${CMAKE_MATCH_1})
    endif()
  endforeach()
  string(JOIN "," hakmem_pt_events_csv ${hakmem_pt_events})
  if(NOT HAKMEM_ANALYSIS_PYTHON)
    set(HAKMEM_ANALYSIS_PYTHON /usr/bin/python3)
  endif()
  foreach(name plugin timeline)
    add_test(NAME analysis_${name}
             COMMAND ${HAKMEM_ANALYSIS_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_${name}.py --lib $<TARGET_FILE:hakmem>
                     --workload $<TARGET_FILE:trace_oom_workload>)
    set_tests_properties(analysis_${name} PROPERTIES
                         LABELS "analysis" SKIP_RETURN_CODE 77 TIMEOUT 600
                         RESOURCE_LOCK hakmem_lttng_sessiond
                         ENVIRONMENT "HAKMEM_TRACE_LIB=$<TARGET_FILE:hakmem>;HAKMEM_TRACE_COMPILED_EVENTS=${hakmem_pt_events_csv};PYTHONDONTWRITEBYTECODE=1")
  endforeach()
endif()
