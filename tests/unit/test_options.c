/* test_options.c — parsing of HAKMEM_MAX_MEMORY, HAKMEM_FAULT_SUPERSLAB and HAKMEM_FAULT_OS values, and the fault sequence. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "internal.h"

int main(void) {
    uint64_t v = 0;
    CHECK(hak_parse_size("0", &v) && v == 0, "0");
    CHECK(hak_parse_size("4096", &v) && v == 4096, "plain bytes");
    CHECK(hak_parse_size("64K", &v) && v == 64u << 10, "K suffix");
    CHECK(hak_parse_size("24m", &v) && v == 24u << 20, "m suffix");
    CHECK(hak_parse_size("2G", &v) && v == 2ull << 30, "G suffix");
    CHECK(hak_parse_size("3MB", &v) && v == 3u << 20, "MB suffix");
    const char *bad[] = {"", "abc", "-5", "12Q", "1.5G", "99999999999999999999", "17179869184G", " 5"};
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
    const char *badf[] = {"every:0", "every:", "prob:1.5", "prob:x", "prob:0.5:", "sometimes", "every:3x",
                          "every:2/28", "every:2/", "every:2/x"};
    for (size_t i = 0; i < sizeof badf / sizeof *badf; i++)
        CHECK(!hak_parse_fault(badf[i], &f), "'%s' must be refused", badf[i]);

    /* HAKMEM_FAULT_OS: the same forms, but OS calls have no class to filter by. */
    CHECK(hak_parse_fault_os("every:5", &f) && f.mode == HAK_FAULT_EVERY && f.every == 5, "os every:5");
    CHECK(hak_parse_fault_os("prob:0.1:3", &f) && f.mode == HAK_FAULT_PROB && f.seed == 3, "os prob with seed");
    CHECK(hak_parse_fault_os("off", &f) && f.mode == HAK_FAULT_OFF, "os off");
    const char *bados[] = {"every:2/4", "prob:0.5:9/27", "every:0", "prob:2", "sometimes"};
    for (size_t i = 0; i < sizeof bados / sizeof *bados; i++)
        CHECK(!hak_parse_fault_os(bados[i], &f), "HAKMEM_FAULT_OS '%s' must be refused", bados[i]);

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
