# The Babeltrace2 plugin and timeline tests (label "analysis"), included from tests/analysis/CMakeLists.txt in
# tracing builds. Both record the capped trace_oom_workload of tests/trace (4 threads x 3 NULLs = 12 OOMs), so both
# take the lock hakmem_lttng_sessiond; both run with /usr/bin/python3 (bt2) and exit 77 only where lttng, bt2,
# babeltrace2's Python plugin provider (test_plugin) or chromium (test_timeline, after checking the picture's
# structure; as root with CI=true it installs Debian's chromium itself) is not installed.
#   analysis_plugin    babeltrace2 -c sink.hakmem.oom-paths / summary [-p json=yes] print what hakmem-trace prints
#   analysis_timeline  hakmem-trace timeline -o .html/.svg: lanes, OOM markers, self-contained; headless Chromium
if(HAKMEM_OVERRIDE)
  foreach(name plugin timeline)
    hakmem_recording_test(LABEL analysis NAME ${name} SCRIPT test_${name}.py TIMEOUT 600
                          ARGS --workload $<TARGET_FILE:trace_oom_workload>)
  endforeach()
endif()
