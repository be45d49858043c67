/*
 * run.c - the worker loop (claim -> handle -> complete/fail -> check the wake
 * fd; idle -> `I` -> wait) and the wake-fd calls custom loops use.
 */
#include "libworker/internal.h"

#include <stdlib.h>
#include <string.h>

bool pgwake_poll_wake(pgwake_worker *w)
{
    pgwk_wake_poll(&w->wake);
    return pgwake_should_stop(w);
}

int pgwake_wait_idle(pgwake_worker *w)
{
    if (w->wake.fd < 0)
        return PGWAKE_WAKE_STOP; /* drain mode: nothing left means done */
    pgwk_wake_poll(&w->wake);
    if (pgwake_should_stop(w))
        return PGWAKE_WAKE_STOP;
    /* `I` only for an empty claim begun after the last W: else claim again */
    if (!w->last_claim_empty || w->wake.wseq != w->claim_wseq)
        return PGWAKE_WAKE_WORK;
    pgwk_wake_send_idle(&w->wake);
    unsigned long seq = w->wake.wseq;
    while (!pgwake_should_stop(w)) {
        if (w->wake.wseq != seq)
            return PGWAKE_WAKE_WORK;
        pgwk_wake_wait(&w->wake, -1);
    }
    return PGWAKE_WAKE_STOP;
}

static void report(pgwake_worker *w, const pgwake_task *t, bool completed, int status)
{
    if (w->outcome)
        w->outcome(w, t, completed, status, w->outcome_arg);
}

/*
 * run_task hands one task to the handler and completes or fails it. A
 * completion that errs (say a follow-up payload that is not JSON: nothing was
 * committed) becomes a failure with retry, so the task is not left leased.
 * Returns PGWAKE_ERROR only when even that failed for a reason other than
 * the connection (a broken schema): the caller then exits.
 */
static int run_task(pgwake_worker *w, pgwake_task *t, pgwake_handler_fn fn, void *arg)
{
    bool retry = true;
    const char *msg = fn(w, t, &retry, arg);
    if (!msg) {
        int rc = pgwake_complete(w, t, NULL);
        report(w, t, true, rc);
        if (rc != PGWAKE_ERROR)
            return PGWAKE_OK;
        msg = pgwake_task_errorf(t, "%s", w->error);
        retry = true;
    }
    char *copy = strdup(msg); /* the handler promised msg only until now */
    int rc = pgwake_fail(w, t, copy ? copy : "failed (out of memory)", retry);
    free(copy);
    report(w, t, false, rc);
    return rc == PGWAKE_ERROR ? PGWAKE_ERROR : PGWAKE_OK;
}

/* run_batch runs the n tasks one claim returned, each completed on its own;
 * a batch begun is finished even after `S` (its leases would otherwise go
 * back only when the worker ends, with an attempt spent), but not once fenced. */
static int run_batch(pgwake_worker *w, pgwake_task **tasks, int n, pgwake_handler_fn fn, void *arg)
{
    int rc = PGWAKE_OK;
    for (int i = 0; i < n; i++) {
        if (rc != PGWAKE_ERROR && !pgwake_fenced(w))
            rc = run_task(w, tasks[i], fn, arg);
        pgwake_task_free(tasks[i]);
    }
    return rc;
}

int pgwake_run(pgwake_worker *w, pgwake_handler_fn fn, void *arg)
{
    pgwake_task *tasks[PGWK_MAX_CLAIM_BATCH];
    for (;;) {
        if (pgwake_fenced(w))
            return PGWAKE_FENCED;
        if (pgwake_should_stop(w))
            return PGWAKE_OK;
        int n = pgwake_claim_batch(w, w->claim_batch, tasks);
        if (n == PGWAKE_STOPPED)
            continue; /* the loop head says why */
        if (n < 0)
            return n;
        if (n == 0) {
            if (pgwake_wait_idle(w) == PGWAKE_WAKE_STOP)
                return pgwake_fenced(w) ? PGWAKE_FENCED : PGWAKE_OK;
            continue;
        }
        int rc = run_batch(w, tasks, n, fn, arg);
        if (rc == PGWAKE_ERROR)
            return rc;
        pgwk_wake_poll(&w->wake);
    }
}
