/* hints.c: notifications to actions. Every payload is a hint (SPEC 4): a
 * stage named gets a wake or a recount, a worker named gets its row read
 * (verify.c), a bad payload recounts every stage; nothing is a verdict. */
#include "hints.h"
#include "clock.h"

#include <string.h>

#include "daemon.h"
#include "log.h"
#include "release_sql.h"
#include "verify.h"

#define BADLOG_WINDOW_MS 10000
#define BADLOG_PER_WINDOW 5

static void each_stage(Daemon *d, void (*fn)(Stage *))
{
    for (int i = 0; i < d->nstages; i++)
        if (!d->stages[i]->removed)
            fn(d->stages[i]);
}

static void hint_all(Stage *s) { stage_hint(s, false); }

/* hints_badlog_cb ends a bad-payload log window, saying how many were not logged. */
void hints_badlog_cb(evutil_socket_t fd, short what, void *arg)
{
    Daemon *d = arg;
    if (d->bad_suppressed)
        log_warn("%u more unparseable notifications in the last %d s (not logged)",
                 d->bad_suppressed, BADLOG_WINDOW_MS / 1000);
    d->bad_logged = d->bad_suppressed = 0;
}

static void log_bad(Daemon *d, const char *channel, const char *payload)
{
    if (d->bad_logged == 0)
        timer_arm_ms(&d->badlog_ev, BADLOG_WINDOW_MS);
    if (d->bad_logged >= BADLOG_PER_WINDOW) {
        d->bad_suppressed++;
        return;
    }
    d->bad_logged++;
    char esc[256];
    log_escape(payload, strlen(payload), esc, sizeof esc);
    log_warn("unparseable notification on %s: \"%s\" (recounting every stage)", channel, esc);
}

/* hints_on_notify is the main connection's notification hook: a payload
 * naming a stage raises its generation (the fast path for task and run
 * notifications), a worker's state change is verified against its row, an
 * unparseable one is logged (rate-limited, escaped) and recounts everything. */
void hints_on_notify(void *arg, const char *channel, const char *payload)
{
    Daemon *d = arg;
    NotifyMsg m = notify_parse(channel, payload);
    d->st.notifications[m.channel]++;
    switch (m.kind) {
    case NT_STAGE: {
        Stage *s = daemon_stage(d, m.stage);
        if (!s) {
            d->st.ignored++;
            log_debug("notification for stage %s, not served here", m.stage);
            return;
        }
        stage_hint(s, m.channel == CH_TASK || m.channel == CH_RUN);
        return;
    }
    case NT_ALL:
        each_stage(d, hint_all);
        return;
    case NT_WORKER: {
        /* A hint, never a verdict: anyone may NOTIFY. The row decides. */
        bool ended = strcmp(m.state, "dead") == 0 || strcmp(m.state, "exited") == 0;
        if (ended)
            release_sql_worker_ended(d->rsql, m.worker_id); /* a retry call: reads rows itself */
        Worker *w = ended ? daemon_worker_by_id(d, m.worker_id) : NULL;
        if (w)
            verify_worker(d->verify, w);
        else if (strcmp(m.state, "starting") == 0)
            maint_remote_change(d->maint);
        return;
    }
    case NT_BAD:
        d->st.unparseable++;
        log_bad(d, channel, payload ? payload : "");
        each_stage(d, hint_all);
        return;
    }
}
