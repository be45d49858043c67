/*
 * fuzz_wake.c - libFuzzer target for the worker side of the wake-fd protocol
 * (SPEC section 5): the bytes a worker reads from PGWAKE_WAKE_FD (`W` work may
 * be available, `S` stop after the current task, anything else ignored, end
 * of file = the daemon is gone) and the `I` it writes back.
 *
 * The byte interpreter (take_bytes in src/libworker/wake.c) is static, so the
 * target goes through the library's internal entry points over a real
 * socketpair, as pgwake_run does: pgwk_wake_init, pgwk_wake_poll,
 * pgwk_wake_wait, pgwk_wake_send_idle, pgwk_wake_close.
 *
 * Input: byte 0 holds flags (bit 0: the daemon end is closed after the bytes,
 * i.e. end of file; bit 1: a stop is requested through the eventfd), the rest
 * are the daemon's bytes, sent in chunks separated by polls. Checked besides
 * the sanitizers: the worker counts exactly the `W`s sent, sees `S` exactly
 * when one was sent, sees end of file exactly when the daemon end closed, and
 * its `I` reaches the daemon while the daemon end is open.
 *
 * The daemon side (wake_cb in src/worker.c: every `I` byte read is an idle
 * report, other bytes are ignored) is static and needs a live Worker; it is
 * not fuzzed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libworker/wake.h"
#include "pgwake/worker.h"

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "fuzz_wake: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                 \
        }                                                                            \
    } while (0)

/* Bytes per chunk between polls; pgwk_wake_poll reads up to 64 x 256 bytes. */
#define CHUNK 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const WkLog quiet = {.level = PGWAKE_LOG_ERROR}; /* "unexpected byte" is a warning */
    int sv[2];
    WkWake k;
    if (size < 1 || size > 32768)
        return -1; /* keep the input out of the corpus */
    bool close_daemon = data[0] & 1, request_stop = data[0] & 2;
    data++, size--;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(pgwk_wake_init(&k, sv[1], &quiet));
    unsigned long ws = 0;
    bool s_sent = false;
    for (size_t off = 0; off < size; off += CHUNK) {
        size_t n = size - off < CHUNK ? size - off : CHUNK;
        CHECK(write(sv[0], data + off, n) == (ssize_t)n);
        for (size_t i = 0; i < n; i++) {
            ws += data[off + i] == 'W';
            s_sent |= data[off + i] == 'S';
        }
        pgwk_wake_poll(&k);
        CHECK(k.wseq == ws && k.stop == s_sent && !k.eof);
    }
    if (request_stop) {
        pgwk_wake_interrupt(&k);
        CHECK(pgwk_wake_interrupted(&k));
        CHECK(pgwk_wake_wait(&k, 0)); /* the eventfd is readable: something arrived */
    }
    if (close_daemon) {
        close(sv[0]);
        sv[0] = -1;
        pgwk_wake_poll(&k);
        CHECK(k.eof);
        pgwk_wake_send_idle(&k); /* nobody to tell: no write, no SIGPIPE */
        CHECK(k.eof);
    } else {
        pgwk_wake_poll(&k);
        CHECK(!k.eof && k.wseq == ws && k.stop == s_sent);
        pgwk_wake_send_idle(&k);
        char c = 0;
        CHECK(read(sv[0], &c, 1) == 1 && c == 'I');
        CHECK(!pgwk_wake_wait(&k, 0) || request_stop); /* nothing more from the daemon */
    }
    pgwk_wake_close(&k);
    CHECK(k.fd == -1 && k.intr_fd == -1);
    if (sv[0] >= 0)
        close(sv[0]);
    return 0;
}
