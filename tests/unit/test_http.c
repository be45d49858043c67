/* test_http.c: the pure parts of the HTTP gate: which Host (or Origin
 * host) may reach a control call or a read, loopback listeners, and the
 * token comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>

#include "http_gate.h"

typedef struct HostCase {
    const char *host, *listen_host; /* Host header; Config.http_host */
    unsigned listen_port;
    bool allowed;
} HostCase;

static void test_host_allowed(void **state)
{
    (void)state;
    static const HostCase cases[] = {
        {"127.0.0.1:6464", "127.0.0.1", 6464, true},
        {"localhost:6464", "127.0.0.1", 6464, true},
        {"LOCALHOST:6464", "127.0.0.1", 6464, true},
        {"[::1]:6464", "127.0.0.1", 6464, true},
        {"[::1]:6464", "::1", 6464, true},
        {"pgwake.internal:6464", "pgwake.internal", 6464, true},
        {"192.168.1.5:6464", "0.0.0.0", 6464, false},
        {"0.0.0.0:6464", "0.0.0.0", 6464, true},
        {"localhost:6465", "127.0.0.1", 6464, false},
        {"localhost", "127.0.0.1", 6464, false},
        {"localhost", "127.0.0.1", 80, true},
        {"127.0.0.1", "127.0.0.1", 80, true},
        {"evil.example:6464", "127.0.0.1", 6464, false},
        {"localhost.evil.example:6464", "127.0.0.1", 6464, false},
        {"localhost:6464.evil", "127.0.0.1", 6464, false},
        {"127.0.0.1:64640", "127.0.0.1", 6464, false},
        {"127.0.0.1:646", "127.0.0.1", 6464, false},
        {"", "127.0.0.1", 6464, false},
        {NULL, "127.0.0.1", 6464, false},
        {"pgwake.internal", "pgwake.internal", 80, true},
        {"pgwake.internal.evil", "pgwake.internal", 80, false},
        /* a v6 listener: http_host has no brackets, a Host header has them */
        {"[fe80::1]:6464", "fe80::1", 6464, true},
        {"[fe80::1]", "fe80::1", 80, true},
        {"[fe80::1]:6465", "fe80::1", 6464, false},
        {"[fe80::1:6464", "fe80::1", 6464, false},
        {"[::1]x:6464", "::1", 6464, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const HostCase *c = &cases[i];
        if (http_host_allowed(c->host, c->listen_host, c->listen_port) != c->allowed)
            fail_msg("Host \"%s\" on %s port %u: expected %s", c->host ? c->host : "(null)",
                     c->listen_host, c->listen_port, c->allowed ? "allowed" : "refused");
    }
}

static void test_token_equal(void **state)
{
    (void)state;
    assert_true(http_token_equal("s3cret", "s3cret"));
    assert_false(http_token_equal("s3cre", "s3cret"));
    assert_false(http_token_equal("s3crett", "s3cret"));
    assert_false(http_token_equal("", "s3cret"));
    assert_false(http_token_equal("S3cret", "s3cret"));
    assert_false(http_token_equal("s3creT", "s3cret"));
    assert_true(http_token_equal("", ""));
    assert_false(http_token_equal("x", ""));
}

static void test_loopback_and_reads(void **state)
{
    (void)state;
    assert_true(http_listen_is_loopback("127.0.0.1"));
    assert_true(http_listen_is_loopback("127.1.2.3"));
    assert_true(http_listen_is_loopback("::1"));
    assert_true(http_listen_is_loopback("localhost"));
    assert_false(http_listen_is_loopback("0.0.0.0"));
    assert_false(http_listen_is_loopback("::"));
    assert_false(http_listen_is_loopback("10.1.2.3"));
    assert_false(http_listen_is_loopback("128.0.0.1"));
    assert_false(http_listen_is_loopback("pgwake.internal"));
    assert_false(http_listen_is_loopback(NULL));
    /* loopback: a rebound name is refused, loopback names and no Host pass */
    assert_false(http_read_host_ok("evil.example:6464", "127.0.0.1", 6464));
    assert_false(http_read_host_ok("evil.example", "127.0.0.1", 6464));
    assert_true(http_read_host_ok("localhost:6464", "127.0.0.1", 6464));
    assert_true(http_read_host_ok("127.0.0.1:6464", "127.0.0.1", 6464));
    assert_true(http_read_host_ok(NULL, "127.0.0.1", 6464));
    /* off loopback, reads take any name */
    assert_true(http_read_host_ok("monitor.example:6464", "0.0.0.0", 6464));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_allowed),
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_loopback_and_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
