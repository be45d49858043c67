/*
 * fuzz_notify.c - libFuzzer target for notify_parse (SPEC section 4: "a bad
 * payload never crashes the daemon") and for log_escape, which the daemon
 * uses to log an unparseable payload.
 *
 * Input: CHANNEL '\n' PAYLOAD (no newline: the whole input is the payload on
 * every channel). A NUL byte ends the payload, as PostgreSQL hands the daemon
 * C strings. The payload is parsed on the given channel, on each of the four
 * real channels, and with a NULL channel and a NULL payload.
 *
 * Checked besides the sanitizers: the verdict is consistent (a stage is set
 * only for NT_STAGE and is a valid stage name; a worker only for NT_WORKER with
 * a known state; a run id only on pgwake_run), and log_escape's output is
 * printable ASCII, NUL-terminated and fits its buffer, whatever its size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "notify.h"

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "fuzz_notify: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static void check_msg(const NotifyMsg *m, const char *channel)
{
    CHECK(memchr(m->stage, '\0', sizeof m->stage));
    CHECK(memchr(m->worker_id, '\0', sizeof m->worker_id));
    CHECK(memchr(m->state, '\0', sizeof m->state));
    CHECK(m->channel >= CH_RUN && m->channel < CH__COUNT);
    if (channel && m->channel != CH_UNKNOWN)
        CHECK(strcmp(channel, channel_names[m->channel]) == 0);
    switch (m->kind) {
    case NT_STAGE:
        CHECK(stage_name_valid(m->stage));
        CHECK(m->channel == CH_RUN || m->channel == CH_TASK || m->channel == CH_WAKE);
        CHECK(m->channel == CH_RUN ? m->run_id > 0 : m->run_id == 0);
        CHECK(!m->worker_id[0]);
        break;
    case NT_ALL:
        CHECK(m->channel == CH_WAKE && !m->stage[0]);
        break;
    case NT_WORKER:
        CHECK(m->channel == CH_HEARTBEAT && m->worker_id[0] && !m->stage[0]);
        CHECK(!strcmp(m->state, "starting") || !strcmp(m->state, "alive") ||
              !strcmp(m->state, "exited") || !strcmp(m->state, "dead"));
        for (const char *c = m->worker_id; *c; c++)
            CHECK((unsigned char)*c > ' ' && (unsigned char)*c != 0x7f);
        break;
    case NT_BAD:
        CHECK(!m->stage[0] && !m->worker_id[0] && !m->state[0]);
        break;
    default:
        CHECK(!"unknown kind");
    }
}

static void check_escape(const char *in, size_t inlen, size_t outlen)
{
    char *out = malloc(outlen ? outlen : 1);
    CHECK(out);
    memset(out, 'Z', outlen ? outlen : 1);
    log_escape(in, inlen, out, outlen);
    if (outlen) {
        size_t n = strnlen(out, outlen);
        CHECK(n < outlen);
        for (size_t i = 0; i < n; i++)
            CHECK(out[i] >= 0x20 && out[i] < 0x7f);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    CHECK(buf);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *channel = NULL, *payload = buf;
    char *nl = memchr(buf, '\n', size);
    if (nl) {
        *nl = '\0';
        channel = buf;
        payload = nl + 1;
    }

    NotifyMsg m = notify_parse(channel ? channel : "", payload);
    check_msg(&m, channel ? channel : "");
    for (int c = 0; c < CH__COUNT; c++) {
        m = notify_parse(channel_names[c], payload);
        check_msg(&m, channel_names[c]);
    }
    if (channel) { /* the channel's own bytes as a payload too */
        m = notify_parse(payload, channel);
        check_msg(&m, payload);
    }
    m = notify_parse(NULL, payload);
    check_msg(&m, NULL);
    m = notify_parse(channel, NULL);
    check_msg(&m, channel);

    size_t plen = strlen(payload);
    static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 256};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_escape(payload, plen, sizes[i]);
    check_escape((const char *)data, size, 4 * size + 1); /* room for all: nothing cut */
    free(buf);
    return 0;
}
