/* test_options.c — HAKMEM_* parsing: good values, each kind of bad value (refused, warned, default kept), faults. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

/* hak_options_init() with name=value (value NULL: unset) and the other options unset; what it wrote to fd 2 goes
 * to out (NUL-terminated). */
static void init_with(const char *name, const char *value, char *out, size_t cap) {
    static const char *names[] = {"HAKMEM_TINY_MID_REFILL_SIMPLE", "HAKMEM_MAX_MEMORY", "HAKMEM_FAULT_SUPERSLAB",
                                  "HAKMEM_PURGE_DELAY", "HAKMEM_HUGE_PAGES", "HAKMEM_CHUNK_WINDOW", "HAKMEM_TRACE_SAMPLE",
                                  "HAKMEM_STATS"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) unsetenv(names[i]);
    if (value) setenv(name, value, 1);
    FILE *tmp = tmpfile();
    CHECK(tmp, "tmpfile");
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    hak_options_init();
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, cap - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    if (value) unsetenv(name);
}

/* Every option's bad values: one warning line naming the variable and the value (quoted, escaped), every option
 * at its default. */
static void bad_values(void) {
    static const struct {
        const char *name, *value, *shown, *dflt;
    } cases[] = {
        {"HAKMEM_MAX_MEMORY", "abc", "\"abc\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "-5", "\"-5\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "-1M", "\"-1M\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "99999999999999999999999", "\"99999999999999999999999\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "18446744073709551616", "\"18446744073709551616\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "17179869184G", "\"17179869184G\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "1e30", "\"1e30\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "16E+", "\"16E+\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "", "\"\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "64Mjunk", "\"64Mjunk\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "64M ", "\"64M \"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "0x10", "\"0x10\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "64M\n", "\"64M\\x0a\"", "0 (no cap)"},
        {"HAKMEM_MAX_MEMORY", "40MB", "\"40MB\"", "0 (no cap)"},
        {"HAKMEM_FAULT_SUPERSLAB", "every:0", "\"every:0\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "every:-1", "\"every:-1\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "every:99999999999999999999999", "\"every:99999999999999999999999\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "prob:1.5", "\"prob:1.5\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "prob:1.0000000000001", "\"prob:1.0000000000001\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "prob:1e30", "\"prob:1e30\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "prob:0.5:99999999999999999999999", "\"prob:0.5:99999999999999999999999\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "every:2/99999999999999999999999", "\"every:2/99999999999999999999999\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "every:3 ", "\"every:3 \"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "sometimes", "\"sometimes\"", "off"},
        {"HAKMEM_FAULT_SUPERSLAB", "", "\"\"", "off"},
        {"HAKMEM_TINY_MID_REFILL_SIMPLE", "2", "\"2\"", "0"},
        {"HAKMEM_TINY_MID_REFILL_SIMPLE", "yes?", "\"yes?\"", "0"},
        {"HAKMEM_TINY_MID_REFILL_SIMPLE", "-1", "\"-1\"", "0"},
        {"HAKMEM_TINY_MID_REFILL_SIMPLE", "99999999999999999999999", "\"99999999999999999999999\"", "0"},
        {"HAKMEM_TINY_MID_REFILL_SIMPLE", "", "\"\"", "0"},
        {"HAKMEM_TINY_MID_REFILL_SIMPLE", "1 ", "\"1 \"", "0"},
        {"HAKMEM_TRACE_SAMPLE", "512KB", "\"512KB\"", "0 (off)"},
        {"HAKMEM_TRACE_SAMPLE", "-1", "\"-1\"", "0 (off)"},
        {"HAKMEM_TRACE_SAMPLE", "", "\"\"", "0 (off)"},
        {"HAKMEM_STATS", "2", "\"2\"", "0"},
        {"HAKMEM_STATS", "yes?", "\"yes?\"", "0"},
        {"HAKMEM_STATS", "", "\"\"", "0"},
        {"HAKMEM_STATS", "on\"\\", "\"on\\\"\\\\\"", "0"},
        {"HAKMEM_STATS", "1e30", "\"1e30\"", "0"},
        {"HAKMEM_PURGE_DELAY", "", "\"\"", "250"},
        {"HAKMEM_PURGE_DELAY", "-1", "\"-1\"", "250"},
        {"HAKMEM_PURGE_DELAY", "250ms", "\"250ms\"", "250"},
        {"HAKMEM_PURGE_DELAY", "1.5", "\"1.5\"", "250"},
        {"HAKMEM_PURGE_DELAY", "99999999999999999999999", "\"99999999999999999999999\"", "250"},
        {"HAKMEM_HUGE_PAGES", "", "\"\"", "auto"},
        {"HAKMEM_HUGE_PAGES", "always", "\"always\"", "auto"},
        {"HAKMEM_HUGE_PAGES", "auto ", "\"auto \"", "auto"},
        {"HAKMEM_CHUNK_WINDOW", "", "\"\"", "64G"},
        {"HAKMEM_CHUNK_WINDOW", "-2M", "\"-2M\"", "64G"},
        {"HAKMEM_CHUNK_WINDOW", "64GB", "\"64GB\"", "64G"},
    };
    char got[1024], want[1024];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        init_with(cases[i].name, cases[i].value, got, sizeof got);
        snprintf(want, sizeof want, "hakmem: warning: %s=%s is not valid; using the default: %s\n", cases[i].name,
                 cases[i].shown, cases[i].dflt);
        CHECK(strcmp(got, want) == 0, "%s=%s: stderr\n  got  '%s'\n  want '%s'", cases[i].name, cases[i].value, got,
              want);
        CHECK(!hak_opt.mid_refill_simple && hak_opt.max_memory == 0 && hak_opt.fault_superslab.mode == HAK_FAULT_OFF &&
                  !hak_opt.stats && !hak_opt.purge_delay.set && hak_opt.huge_pages == HAK_HUGE_AUTO &&
                  !hak_opt.chunk_window.set,
              "%s=%s: an option left its default", cases[i].name, cases[i].value);
    }
    /* A delay above an hour has its own reason; 0 and the longest are taken. */
    init_with("HAKMEM_PURGE_DELAY", "3600001", got, sizeof got);
    CHECK(strcmp(got, "hakmem: warning: HAKMEM_PURGE_DELAY=\"3600001\" is above the longest delay, 3600000 ms; "
                      "using the default: 250\n") == 0 && hak_purge_delay_ns() == 250000000u,
          "HAKMEM_PURGE_DELAY=3600001: '%s'", got);
    init_with("HAKMEM_PURGE_DELAY", "0", got, sizeof got);
    CHECK(got[0] == '\0' && hak_opt.purge_delay.set && hak_purge_delay_ns() == 0, "HAKMEM_PURGE_DELAY=0: '%s'", got);
    init_with("HAKMEM_PURGE_DELAY", "3600000", got, sizeof got);
    CHECK(got[0] == '\0' && hak_purge_delay_ns() == 3600000ull * 1000000u, "HAKMEM_PURGE_DELAY=3600000: '%s'", got);
    init_with("HAKMEM_PURGE_DELAY", NULL, got, sizeof got);
    CHECK(hak_purge_delay_ns() == 250000000u, "the purge delay's default is 250 ms");
    /* Huge pages: a switch, or auto (the default). */
    static const struct {
        const char *value;
        hak_huge_mode mode;
    } huge[] = {{"on", HAK_HUGE_ON}, {"1", HAK_HUGE_ON}, {"off", HAK_HUGE_OFF}, {"no", HAK_HUGE_OFF},
                {"auto", HAK_HUGE_AUTO}, {NULL, HAK_HUGE_AUTO}};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; i++) {
        init_with("HAKMEM_HUGE_PAGES", huge[i].value, got, sizeof got);
        CHECK(got[0] == '\0' && hak_opt.huge_pages == huge[i].mode, "HAKMEM_HUGE_PAGES=%s: mode %d, stderr '%s'",
              huge[i].value ? huge[i].value : "(unset)", (int)hak_opt.huge_pages, got);
    }

    /* The chunk window: 0 or 2M..256G, cut to 2 MiB steps; below and above have their own reasons. */
    static const struct {
        const char *value;
        uint64_t bytes;
    } window[] = {{"0", 0}, {"2M", 2u << 20}, {"3M", 2u << 20}, {"1G", 1u << 30}, {"256G", (uint64_t)256 << 30}};
    for (size_t i = 0; i < sizeof window / sizeof *window; i++) {
        init_with("HAKMEM_CHUNK_WINDOW", window[i].value, got, sizeof got);
        CHECK(got[0] == '\0' && hak_opt.chunk_window.set && hak_opt.chunk_window.bytes == window[i].bytes,
              "HAKMEM_CHUNK_WINDOW=%s: %llu bytes, stderr '%s'", window[i].value,
              (unsigned long long)hak_opt.chunk_window.bytes, got);
    }
    init_with("HAKMEM_CHUNK_WINDOW", "1M", got, sizeof got);
    CHECK(strcmp(got, "hakmem: warning: HAKMEM_CHUNK_WINDOW=\"1M\" is below the smallest window, 2M; using the "
                      "default: 64G\n") == 0 && !hak_opt.chunk_window.set,
          "HAKMEM_CHUNK_WINDOW=1M: '%s'", got);
    init_with("HAKMEM_CHUNK_WINDOW", "257G", got, sizeof got);
    CHECK(strcmp(got, "hakmem: warning: HAKMEM_CHUNK_WINDOW=\"257G\" is above the largest window, 256G; using the "
                      "default: 64G\n") == 0 && !hak_opt.chunk_window.set,
          "HAKMEM_CHUNK_WINDOW=257G: '%s'", got);

    /* A long value is shown cut, and still on one line. */
    char longv[300];
    memset(longv, '7', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    longv[100] = '\n';
    init_with("HAKMEM_MAX_MEMORY", longv, got, sizeof got);
    CHECK(strchr(got, '\n') == got + strlen(got) - 1 && strstr(got, "7777\"... is not valid") &&
              strlen(got) < 200,
          "a 299-byte value: '%s'", got);

    /* Good values, and none: no warning. */
    static const struct {
        const char *name, *value;
    } good[] = {{"HAKMEM_MAX_MEMORY", "64M"}, {"HAKMEM_FAULT_SUPERSLAB", "every:3/4"},
                {"HAKMEM_TINY_MID_REFILL_SIMPLE", "1"}, {"HAKMEM_STATS", "yes"}, {"HAKMEM_STATS", NULL}};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        init_with(good[i].name, good[i].value, got, sizeof got);
        CHECK(got[0] == '\0', "%s=%s: unexpected stderr '%s'", good[i].name, good[i].value ? good[i].value : "(unset)",
              got);
    }
    init_with("HAKMEM_MAX_MEMORY", "64M", got, sizeof got);
    CHECK(hak_opt.max_memory == 64u << 20, "HAKMEM_MAX_MEMORY=64M took effect");
    init_with("HAKMEM_TRACE_SAMPLE", "16K", got, sizeof got);
    CHECK(got[0] == '\0' && hak_opt.trace_sample == 16384, "HAKMEM_TRACE_SAMPLE=16K: '%s'", got);
    init_with("HAKMEM_TRACE_SAMPLE", NULL, got, sizeof got);
    CHECK(hak_opt.trace_sample == 0, "the heap profile is off by default");

    /* A cap below the smallest is refused with its own reason; the smallest itself and 0 (no cap) are taken. */
    const char *tiny_caps[] = {"1", "4096", "1023K"};
    for (size_t i = 0; i < sizeof tiny_caps / sizeof *tiny_caps; i++) {
        init_with("HAKMEM_MAX_MEMORY", tiny_caps[i], got, sizeof got);
        char line[160];
        snprintf(line, sizeof line,
                 "hakmem: warning: HAKMEM_MAX_MEMORY=\"%s\" is below the smallest cap, 1M; using the default: 0 (no cap)\n",
                 tiny_caps[i]);
        CHECK(strcmp(got, line) == 0 && hak_opt.max_memory == 0, "HAKMEM_MAX_MEMORY=%s: '%s'", tiny_caps[i], got);
    }
    init_with("HAKMEM_MAX_MEMORY", "1M", got, sizeof got);
    CHECK(got[0] == '\0' && hak_opt.max_memory == 1u << 20, "HAKMEM_MAX_MEMORY=1M: '%s'", got);
    init_with("HAKMEM_MAX_MEMORY", "0", got, sizeof got);
    CHECK(got[0] == '\0' && hak_opt.max_memory == 0, "HAKMEM_MAX_MEMORY=0: '%s'", got);
    init_with("HAKMEM_TINY_MID_REFILL_SIMPLE", "1", got, sizeof got);
    CHECK(hak_opt.mid_refill_simple, "HAKMEM_TINY_MID_REFILL_SIMPLE=1 took effect");
    init_with("HAKMEM_STATS", NULL, got, sizeof got);
}

int main(void) {
    uint64_t v = 0;
    CHECK(hak_parse_size("0", &v) && v == 0, "0");
    CHECK(hak_parse_size("4096", &v) && v == 4096, "plain bytes");
    CHECK(hak_parse_size("64K", &v) && v == 64u << 10, "K suffix");
    CHECK(hak_parse_size("24m", &v) && v == 24u << 20, "m suffix");
    CHECK(hak_parse_size("2G", &v) && v == 2ull << 30, "G suffix");
    CHECK(hak_parse_size("18446744073709551615", &v) && v == UINT64_MAX, "the largest 64-bit value");
    CHECK(hak_parse_size("16777215T", &v) && v == 16777215ull << 40, "the largest T value");
    const char *bad[] = {"", "abc", "-5", "-1M", "+5", "12Q", "1.5G", "99999999999999999999", "18446744073709551616",
                         "99999999999999999999999", "17179869184G", "16777216T", "1e30", "16E+", "16E", "64Mjunk",
                         "64MBB", "3MB", "40mb", "5B", "64M ", " 5", "0x10", "5\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = 77;
        CHECK(!hak_parse_size(bad[i], &v) && v == 77, "'%s' must be refused and leave the value", bad[i]);
    }

    hak_fault_spec f;
    CHECK(hak_parse_fault("every:3", &f) && f.mode == HAK_FAULT_EVERY && f.every == 3, "every:3");
    CHECK(hak_parse_fault("prob:0.25:42", &f) && f.mode == HAK_FAULT_PROB && f.seed == 42, "prob with seed");
    CHECK(hak_parse_fault("prob:1", &f) && f.threshold == UINT64_MAX, "prob:1 always fires");
    CHECK(hak_parse_fault("off", &f) && f.mode == HAK_FAULT_OFF, "off");
    CHECK(hak_parse_fault("every:2/4", &f) && f.every == 2 && f.class_filter == 4, "every:2/4");
    CHECK(hak_parse_fault("prob:0.5:9/27", &f) && f.seed == 9 && f.class_filter == 27, "prob:0.5:9/27");
    CHECK(hak_parse_fault("every:2", &f) && f.class_filter == -1, "no filter: every class");
    CHECK(hak_parse_fault("prob:1.000000000000", &f) && f.threshold == UINT64_MAX, "prob:1.000000000000 is 1");
    CHECK(hak_parse_fault("0", &f) && f.mode == HAK_FAULT_OFF, "0");
    const char *badf[] = {"every:0", "every:", "prob:1.5", "prob:x", "prob:0.5:", "sometimes", "every:3x",
                          "every:2/61", "every:2/", "every:2/x", "", "every:-1", "every:99999999999999999999999",
                          "prob:1.0000000000001", "prob:2", "prob:-0.5", "prob:.5", "prob:0.", "prob:1e30",
                          "prob:0.5:99999999999999999999999", "every:2/99999999999999999999999", "every:3 ",
                          " every:3", "EVERY:3", "on"};
    for (size_t i = 0; i < sizeof badf / sizeof *badf; i++)
        CHECK(!hak_parse_fault(badf[i], &f), "'%s' must be refused", badf[i]);

    /* HAKMEM_FAULT_OS: the same forms, but OS calls have no class to filter by. */
    CHECK(hak_parse_fault_os("every:5", &f) && f.mode == HAK_FAULT_EVERY && f.every == 5, "os every:5");
    CHECK(hak_parse_fault_os("prob:0.1:3", &f) && f.mode == HAK_FAULT_PROB && f.seed == 3, "os prob with seed");
    CHECK(hak_parse_fault_os("off", &f) && f.mode == HAK_FAULT_OFF, "os off");
    const char *bados[] = {"every:2/4", "prob:0.5:9/27", "every:0", "prob:2", "sometimes"};
    for (size_t i = 0; i < sizeof bados / sizeof *bados; i++)
        CHECK(!hak_parse_fault_os(bados[i], &f), "HAKMEM_FAULT_OS '%s' must be refused", bados[i]);

    bool flag = false;
    const char *yes[] = {"1", "on", "yes", "true"}, *no[] = {"0", "off", "no", "false"};
    for (size_t i = 0; i < 4; i++) {
        CHECK(hak_parse_bool(yes[i], &flag) && flag, "'%s' is true", yes[i]);
        CHECK(hak_parse_bool(no[i], &flag) && !flag, "'%s' is false", no[i]);
    }
    const char *badb[] = {"", "2", "-1", "yes?", "1 ", " 1", "01", "TRUE", "99999999999999999999999", "1e30", "y"};
    for (size_t i = 0; i < sizeof badb / sizeof *badb; i++) {
        flag = true;
        CHECK(!hak_parse_bool(badb[i], &flag) && flag, "'%s' must be refused and leave the value", badb[i]);
    }

    bad_values();

    /* every:3 fires on calls 3, 6, 9, ... */
    _Atomic uint64_t calls = 0;
    hak_parse_fault("every:3", &f);
    for (int i = 1; i <= 30; i++) CHECK(hak_fault_fires(&f, &calls, 4) == (i % 3 == 0), "every:3 call %d", i);

    /* A class filter: other classes never fail and do not count. */
    hak_parse_fault("every:2/4", &f);
    _Atomic uint64_t fc = 0;
    for (int i = 1; i <= 20; i++) {
        CHECK(!hak_fault_fires(&f, &fc, 5), "class 5 is not filtered in");
        CHECK(hak_fault_fires(&f, &fc, 4) == (i % 2 == 0), "every:2/4 call %d of class 4", i);
    }

    /* prob:P fires on about P of the calls, and the same seed replays the same sequence. */
    hak_parse_fault("prob:0.25:7", &f);
    _Atomic uint64_t c1 = 0, c2 = 0;
    int fired = 0;
    for (int i = 0; i < 100000; i++) {
        bool a = hak_fault_fires(&f, &c1, 4), b = hak_fault_fires(&f, &c2, 4);
        CHECK(a == b, "same seed, same sequence (call %d)", i);
        fired += a;
    }
    CHECK(fired > 23000 && fired < 27000, "prob:0.25 fired %d of 100000", fired);
    hak_parse_fault("prob:0", &f);
    for (int i = 0; i < 1000; i++) CHECK(!hak_fault_fires(&f, &c1, 4), "prob:0 never fires");
    puts("options ok");
    return 0;
}
