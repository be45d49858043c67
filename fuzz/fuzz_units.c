/*
 * fuzz_units.c - libFuzzer target for units_parse_duration ("250ms", "1.5s",
 * "5m", "1h", a bare number of seconds) and units_parse_size ("512K", "50M",
 * "1G", a bare number of bytes).
 *
 * The input, cut at its first NUL, goes to both parsers. Checked besides the
 * sanitizers: a parsed value is never negative; a parsed duration printed by
 * units_format_duration parses back to the same value (the daemon prints
 * durations in messages people paste back into the file); a failure leaves
 * the output untouched.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_units: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1), text[32];
    CHECK(s);
    memcpy(s, data, size);
    s[size] = '\0';

    int64_t v = -42;
    if (units_parse_duration(s, &v)) {
        CHECK(v >= 0);
        units_format_duration(v, text, sizeof text);
        int64_t back = -42;
        if (!units_parse_duration(text, &back) || back != v) {
            fprintf(stderr, "fuzz_units: \"%s\" -> %" PRId64 " ms -> \"%s\" -> %" PRId64 "\n", s, v,
                    text, back);
            abort();
        }
    } else {
        CHECK(v == -42);
    }

    v = -42;
    if (units_parse_size(s, &v))
        CHECK(v >= 0);
    else
        CHECK(v == -42);
    free(s);
    return 0;
}
