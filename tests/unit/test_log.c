/* test_log.c: log_escape (what a hostile NOTIFY payload looks like in a log
 * line) and log_level_parse, edge cases spelled out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* ---- log_level_parse ---- */

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        LogLevel level;
    } good[] = {
        {"fatal", LOG_FATAL},   {"error", LOG_ERROR}, {"warning", LOG_WARN}, {"warn", LOG_WARN},
        {"info", LOG_INFO},     {"debug", LOG_DEBUG}, {"noise", LOG_NOISE},  {"INFO", LOG_INFO},
        {"Warning", LOG_WARN},  {"WARN", LOG_WARN},   {"dEbUg", LOG_DEBUG},  {"NOISE", LOG_NOISE},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        LogLevel l = (LogLevel)-1;
        if (!log_level_parse(good[i].name, &l))
            fail_msg("\"%s\" was refused", good[i].name);
        assert_int_equal(l, good[i].level);
    }
    static const char *const bad[] = {
        "", "inf", "information", "warnings", "warni", " info", "info ", "info\n", "trace",
        "verbose", "notice", "err", "0", "3", "-1", "debug2", "no ise", "\xc3\xafnfo",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        LogLevel l = LOG_NOISE;
        if (log_level_parse(bad[i], &l))
            fail_msg("\"%s\" was accepted as %d", bad[i], (int)l);
        assert_int_equal(l, LOG_NOISE); /* untouched */
    }
}

/* ---- log_escape ---- */

/* full_escape: the uncut escape of in[0..n), by the rule written out. */
static size_t full_escape(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (in[i] >= 0x20 && in[i] < 0x7f && in[i] != '\\')
            out[o++] = (char)in[i];
        else
            o += (size_t)sprintf(out + o, "\\x%02x", in[i]);
    out[o] = '\0';
    return o;
}

/* escape_boundary: whether offset `at` of the full escape falls between the
 * escapes of two input bytes, never inside a \xNN. */
static bool escape_boundary(const unsigned char *in, size_t n, size_t at)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < at; i++)
        o += in[i] >= 0x20 && in[i] < 0x7f && in[i] != '\\' ? 1 : 4;
    return o == at;
}

static void expect_escape(const char *in, size_t n, const char *want)
{
    char out[256];
    memset(out, 'Z', sizeof out);
    log_escape(in, n, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_escape_printable_kept(void **state)
{
    (void)state;
    char in[128], want[128];
    size_t n = 0;
    for (int c = 0x20; c < 0x7f; c++)
        if (c != '\\')
            in[n++] = (char)c;
    in[n] = '\0';
    memcpy(want, in, n + 1);
    expect_escape(in, n, want);
    expect_escape("company_research", 16, "company_research");
    expect_escape("  *  ", 5, "  *  ");
    expect_escape("\"quoted\" 'x' %s %n", 18, "\"quoted\" 'x' %s %n");
}

static void test_escape_each_byte(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char in[1] = {(char)c}, want[8];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            snprintf(want, sizeof want, "%c", c);
        else
            snprintf(want, sizeof want, "\\x%02x", c); /* lower-case hex, always two digits */
        expect_escape(in, 1, want);
    }
}

static void test_escape_spelled_out(void **state)
{
    (void)state;
    expect_escape("", 0, "");
    expect_escape("anything", 0, "");
    expect_escape("\\", 1, "\\x5c");
    expect_escape("a\\x41", 5, "a\\x5cx41"); /* an escape in the input stays distinguishable */
    expect_escape("a\tb\nc\r", 6, "a\\x09b\\x0ac\\x0d");
    expect_escape("\x1b[31mred\x1b[0m", 12, "\\x1b[31mred\\x1b[0m");
    expect_escape("caf\xc3\xa9", 5, "caf\\xc3\\xa9");
    expect_escape("\xe2\x80\x8b", 3, "\\xe2\\x80\\x8b");
    expect_escape("\x7f\x80\xff", 3, "\\x7f\\x80\\xff");
    /* inlen, not the terminator, decides: a NUL inside is a byte like any other. */
    expect_escape("a\0b", 3, "a\\x00b");
    expect_escape("abcdef", 3, "abc");
}

/* A zero-length buffer is not written at all, not even a terminator. */
static void test_escape_zero_length_output(void **state)
{
    (void)state;
    char out[4] = {'Z', 'Z', 'Z', 'Z'};
    log_escape("abc", 3, out, 0);
    log_escape("", 0, out, 0);
    log_escape("\x01\x02", 2, out, 0);
    assert_memory_equal(out, "ZZZZ", 4);
    log_escape("abc", 3, NULL, 0);
}

/* Inputs for the truncation tests: plain, all-escaped, mixed, boundaries. */
static size_t sample_input(int k, unsigned char *in)
{
    size_t n = 0;
    switch (k) {
    case 0: /* printable */
        for (; n < 300; n++)
            in[n] = (unsigned char)('a' + n % 26);
        break;
    case 1: /* every byte escaped */
        for (; n < 300; n++)
            in[n] = (unsigned char)(n % 2 ? 0x01 : 0xff);
        break;
    case 2: /* mixed, escapes at every offset mod 4 */
        for (; n < 300; n++)
            in[n] = (unsigned char)(n % 3 == 0 ? '\\' : n % 5 == 0 ? 0x80 : 'x');
        break;
    case 3: /* a single byte */
        in[n++] = 'a';
        break;
    case 4: /* a single escaped byte */
        in[n++] = 0x07;
        break;
    default: /* ten plain bytes, then one escaped */
        memcpy(in, "0123456789\x1b", 11);
        n = 11;
        break;
    }
    return n;
}

#define SAMPLES 6
#define MAX_OUT 300

/* Whatever the sizes: nothing written past outlen, and always a C string. */
static void test_escape_never_overflows(void **state)
{
    (void)state;
    unsigned char in[400];
    char out[MAX_OUT + 16];
    for (int k = 0; k < SAMPLES; k++) {
        size_t n = sample_input(k, in);
        for (size_t outlen = 1; outlen <= MAX_OUT; outlen++) {
            memset(out, 'Z', sizeof out);
            log_escape((const char *)in, n, out, outlen);
            for (size_t i = outlen; i < sizeof out; i++)
                if (out[i] != 'Z')
                    fail_msg("sample %d, outlen %zu: byte %zu written", k, outlen, i);
            if (!memchr(out, '\0', outlen))
                fail_msg("sample %d (%zu bytes, first 0x%02x), outlen %zu: no terminator in the "
                         "buffer (\"%.*s\")",
                         k, n, in[0], outlen, (int)outlen, out);
        }
    }
}

/* A cut output is a prefix of the full escape, cut between escapes, then
 * "...", and it uses the buffer: at most one escape and the mark short. */
static void test_escape_cut_marks(void **state)
{
    (void)state;
    unsigned char in[400];
    char full[2000], out[MAX_OUT + 16];
    for (int k = 0; k < SAMPLES; k++) {
        size_t n = sample_input(k, in);
        size_t flen = full_escape(in, n, full);
        for (size_t outlen = 5; outlen <= MAX_OUT; outlen++) {
            if (flen < outlen)
                continue; /* fits: test_escape_fits_uncut */
            memset(out, 'Z', sizeof out);
            log_escape((const char *)in, n, out, outlen);
            size_t len = strnlen(out, outlen);
            if (len >= outlen || len < 3 || strcmp(out + len - 3, "...") != 0)
                fail_msg("sample %d, outlen %zu: \"%.*s\" is not cut with \"...\"", k, outlen,
                         (int)len, out);
            size_t keep = len - 3;
            if (memcmp(out, full, keep) != 0)
                fail_msg("sample %d, outlen %zu: \"%s\" is not a prefix of the escape", k, outlen,
                         out);
            if (!escape_boundary(in, n, keep))
                fail_msg("sample %d, outlen %zu: cut inside an escape: \"%s\"", k, outlen, out);
            if (len + 8 < outlen)
                fail_msg("sample %d, outlen %zu: only %zu bytes used", k, outlen, len);
        }
    }
}

/* An input whose escape fits the buffer is copied whole, never cut: the
 * comment promises "long input is cut", and a short one is not long. */
static void test_escape_fits_uncut(void **state)
{
    (void)state;
    unsigned char in[400];
    char full[2000], out[MAX_OUT + 16];
    for (int k = 0; k < SAMPLES; k++) {
        size_t n = sample_input(k, in);
        size_t flen = full_escape(in, n, full);
        for (size_t outlen = flen + 1; outlen <= MAX_OUT; outlen++) {
            memset(out, 'Z', sizeof out);
            log_escape((const char *)in, n, out, outlen);
            if (!memchr(out, '\0', outlen) || strcmp(out, full) != 0)
                fail_msg("\"%s\" into %zu bytes: want it whole, got \"%.*s\"", full, outlen,
                         (int)strnlen(out, outlen), out);
        }
    }
}

/* The daemon's use: an 8,000-byte payload into its 256-byte buffer. */
static void test_escape_daemon_buffer(void **state)
{
    (void)state;
    static char payload[8001];
    for (size_t i = 0; i < 8000; i++)
        payload[i] = (char)(i % 7 == 0 ? '\x01' : i % 11 == 0 ? '\xe9' : 'p');
    char esc[256 + 8];
    memset(esc, 'Z', sizeof esc);
    log_escape(payload, 8000, esc, 256);
    assert_memory_equal(esc + 256, "ZZZZZZZZ", 8);
    assert_true(strlen(esc) <= 255);
    assert_true(strlen(esc) >= 248);
    assert_string_equal(esc + strlen(esc) - 3, "...");
    for (const char *p = esc; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            fail_msg("byte 0x%02x left unescaped at %zu", (unsigned char)*p, (size_t)(p - esc));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_parse),
        cmocka_unit_test(test_escape_printable_kept),
        cmocka_unit_test(test_escape_each_byte),
        cmocka_unit_test(test_escape_spelled_out),
        cmocka_unit_test(test_escape_zero_length_output),
        cmocka_unit_test(test_escape_never_overflows),
        cmocka_unit_test(test_escape_cut_marks),
        cmocka_unit_test(test_escape_fits_uncut),
        cmocka_unit_test(test_escape_daemon_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
