/*
 * run.c - the worker loop (claim -> handle -> complete/fail -> check the wake
 * fd; idle -> `I` -> wait; with claim_batch, claim many and complete them
 * together) and the wake-fd calls custom loops use.
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

/*
 * run_batch hands n claimed tasks to the handler in turn, then completes the
 * successes together; failures are failed one by one as they come. A
 * completion that errs becomes a failure with retry, as in run_task.
 */
static int run_batch(pgwake_worker *w, pgwake_task **ts, int n, int *status,
                     pgwake_handler_fn fn, void *arg)
{
    enum { REPORTED = 1 }; /* a status[] value no call returns */
    int ok = 0, i = 0, rc = PGWAKE_OK;
    for (; i < n && !pgwake_fenced(w); i++) {
        bool retry = true;
        const char *msg = fn(w, ts[i], &retry, arg);
        if (!msg) {
            ts[ok++] = ts[i];
            continue;
        }
        char *copy = strdup(msg);
        int frc = pgwake_fail(w, ts[i], copy ? copy : "failed (out of memory)", retry);
        free(copy);
        report(w, ts[i], false, frc);
        if (frc == PGWAKE_ERROR)
            rc = PGWAKE_ERROR;
        pgwake_task_free(ts[i]);
    }
    for (int j = i; j < n; j++)
        pgwake_task_free(ts[j]); /* fenced: those leases are others' now, left unrun */
    if (ok > 0 && pgwake_complete_batch(w, ts, ok, status) == PGWAKE_ERROR) {
        char *why = strdup(w->error);
        for (int j = 0; j < ok; j++) {
            if (status[j] != PGWAKE_ERROR)
                continue;
            int frc = pgwake_fail(w, ts[j], why ? why : "complete failed", true);
            report(w, ts[j], false, frc);
            status[j] = REPORTED;
            if (frc == PGWAKE_ERROR)
                rc = PGWAKE_ERROR;
        }
        free(why);
    }
    for (int j = 0; j < ok; j++) {
        if (status[j] != REPORTED)
            report(w, ts[j], true, status[j]);
        pgwake_task_free(ts[j]);
    }
    return rc;
}

/* run_batched is pgwake_run with claim_batch > 1. */
static int run_batched(pgwake_worker *w, pgwake_handler_fn fn, void *arg)
{
    int n = w->claim_batch;
    pgwake_task **ts = calloc((size_t)n, sizeof *ts);
    int *status = calloc((size_t)n, sizeof *status);
    int rc = PGWAKE_ERROR;
    if (!ts || !status) {
        pgwk_set_error(w, "out of memory for a claim batch of %d", n);
        goto out;
    }
    for (;;) {
        if (pgwake_fenced(w)) {
            rc = PGWAKE_FENCED;
            break;
        }
        if (pgwake_should_stop(w)) {
            rc = PGWAKE_OK;
            break;
        }
        int got = pgwake_claim_batch(w, n, ts);
        if (got == PGWAKE_STOPPED)
            continue;
        if (got < 0) {
            rc = got;
            break;
        }
        if (got == 0) {
            if (pgwake_wait_idle(w) == PGWAKE_WAKE_STOP) {
                rc = pgwake_fenced(w) ? PGWAKE_FENCED : PGWAKE_OK;
                break;
            }
            continue;
        }
        if (run_batch(w, ts, got, status, fn, arg) == PGWAKE_ERROR)
            break;
        pgwk_wake_poll(&w->wake);
    }
out:
    free(ts);
    free(status);
    return rc;
}

int pgwake_run(pgwake_worker *w, pgwake_handler_fn fn, void *arg)
{
    if (w->claim_batch > 1)
        return run_batched(w, fn, arg);
    for (;;) {
        if (pgwake_fenced(w))
            return PGWAKE_FENCED;
        if (pgwake_should_stop(w))
            return PGWAKE_OK;
        pgwake_task *t = NULL;
        int n = pgwake_claim(w, &t);
        if (n == PGWAKE_STOPPED)
            continue; /* the loop head says why */
        if (n < 0)
            return n;
        if (n == 0) {
            if (pgwake_wait_idle(w) == PGWAKE_WAKE_STOP)
                return pgwake_fenced(w) ? PGWAKE_FENCED : PGWAKE_OK;
            continue;
        }
        int rc = run_task(w, t, fn, arg);
        pgwake_task_free(t);
        if (rc == PGWAKE_ERROR)
            return rc;
        pgwk_wake_poll(&w->wake);
    }
}
