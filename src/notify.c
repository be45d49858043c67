/* notify.c: parses notification payloads of the four channels of SPEC section 4.
 * A payload is a hint; whatever it says, the daemon recounts before trusting it. */
#include "notify.h"

#include <stdbool.h>
#include <string.h>

#include "config.h"

const char *const channel_names[CH__COUNT] = {
    [CH_RUN] = "pgwake_run",
    [CH_TASK] = "pgwake_task",
    [CH_HEARTBEAT] = "pgwake_heartbeat",
    [CH_WAKE] = "pgwake_wake",
    [CH_UNKNOWN] = "unknown",
};
_Static_assert(sizeof channel_names / sizeof channel_names[0] == CH__COUNT, "channel names");

static Channel channel_of(const char *name)
{
    for (int c = 0; c < CH_UNKNOWN; c++)
        if (strcmp(name, channel_names[c]) == 0)
            return (Channel)c;
    return CH_UNKNOWN;
}

/* Copies [s, s+n) into dst when it fits and holds no space or control byte. */
static bool take_word(char *dst, size_t dstlen, const char *s, size_t n)
{
    if (n == 0 || n >= dstlen)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f)
            return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool parse_stage(NotifyMsg *m, const char *s, size_t n)
{
    return take_word(m->stage, sizeof m->stage, s, n) && stage_name_valid(m->stage);
}

static bool parse_run_id(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - (s[i] - '0')) / 10)
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return v > 0;
}

static bool parse_worker(NotifyMsg *m, const char *s, size_t n)
{
    static const char *const states[] = {"starting", "alive", "exited", "dead"};
    const char *sp = memchr(s, ' ', n);
    if (!sp || !take_word(m->worker_id, sizeof m->worker_id, s, (size_t)(sp - s)))
        return false;
    size_t rest = n - (size_t)(sp - s) - 1;
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (rest == strlen(states[i]) && memcmp(sp + 1, states[i], rest) == 0) {
            memcpy(m->state, states[i], rest + 1);
            return true;
        }
    return false;
}

/* notify_parse classifies one notification. Surrounding spaces are forgiven
 * (people type NOTIFY by hand); anything else malformed is NT_BAD. */
NotifyMsg notify_parse(const char *channel, const char *payload)
{
    NotifyMsg m;
    memset(&m, 0, sizeof m);
    m.kind = NT_BAD;
    m.channel = channel ? channel_of(channel) : CH_UNKNOWN;
    if (!payload)
        payload = "";
    size_t n = strlen(payload);
    while (n && payload[n - 1] == ' ')
        n--;
    while (n && *payload == ' ')
        payload++, n--;

    switch (m.channel) {
    case CH_RUN: {
        const char *sp = memchr(payload, ' ', n);
        if (sp && parse_stage(&m, payload, (size_t)(sp - payload)) &&
            parse_run_id(sp + 1, n - (size_t)(sp - payload) - 1, &m.run_id))
            m.kind = NT_STAGE;
        break;
    }
    case CH_TASK:
        if (parse_stage(&m, payload, n))
            m.kind = NT_STAGE;
        break;
    case CH_HEARTBEAT:
        if (parse_worker(&m, payload, n))
            m.kind = NT_WORKER;
        break;
    case CH_WAKE:
        if (n == 0 || (n == 1 && *payload == '*'))
            m.kind = NT_ALL;
        else if (parse_stage(&m, payload, n))
            m.kind = NT_STAGE;
        break;
    default:
        break;
    }
    if (m.kind != NT_STAGE)
        m.stage[0] = '\0';
    if (m.kind != NT_WORKER)
        m.worker_id[0] = m.state[0] = '\0';
    return m;
}
