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
 * handle hands the tasks in[0..n-1] to the handler in turn. Failures are
 * failed and tasks with follow-ups completed (their own transaction) at once;
 * the plain successes go to ok[], returned in *nok, to be completed together.
 * A completion that errs becomes a failure with retry, so no task is left
 * leased. Returns PGWAKE_ERROR when even a failure failed for a reason other
 * than the connection (a broken schema): the caller then exits.
 */
static int handle(pgwake_worker *w, pgwake_task **in, int n, pgwake_task **ok, int *nok,
                  pgwake_handler_fn fn, void *arg)
{
    int rc = PGWAKE_OK, i = 0;
    *nok = 0;
    for (; i < n && !pgwake_fenced(w); i++) {
        pgwake_task *t = in[i];
        bool retry = true;
        const char *msg = fn(w, t, &retry, arg);
        if (!msg && t->priv->nfu == 0) {
            ok[(*nok)++] = t;
            continue;
        }
        if (!msg) {
            int crc = pgwake_complete(w, t, NULL);
            report(w, t, true, crc);
            if (crc != PGWAKE_ERROR) {
                pgwake_task_free(t);
                continue;
            }
            msg = pgwake_task_errorf(t, "%s", w->error);
            retry = true;
        }
        char *copy = strdup(msg); /* the handler promised msg only until now */
        int frc = pgwake_fail(w, t, copy ? copy : "failed (out of memory)", retry);
        free(copy);
        report(w, t, false, frc);
        if (frc == PGWAKE_ERROR)
            rc = PGWAKE_ERROR;
        pgwake_task_free(t);
    }
    for (; i < n; i++)
        pgwake_task_free(in[i]); /* fenced: those leases are others' now, left unrun */
    return rc;
}

/* settle reports completions; one that erred is failed with retry instead. */
static int settle(pgwake_worker *w, pgwake_task **ts, int n, const int *status)
{
    int rc = PGWAKE_OK;
    for (int i = 0; i < n; i++) {
        if (status[i] == PGWAKE_ERROR) {
            char *why = strdup(w->error[0] ? w->error : "complete failed");
            int frc = pgwake_fail(w, ts[i], why ? why : "complete failed", true);
            free(why);
            report(w, ts[i], false, frc);
            if (frc == PGWAKE_ERROR)
                rc = PGWAKE_ERROR;
        } else {
            report(w, ts[i], true, status[i]);
        }
        pgwake_task_free(ts[i]);
    }
    return rc;
}

/*
 * pgwake_run claims claim_batch tasks (1 by default) and runs them. With one
 * task a success completes together with the next claim, in one round trip
 * and one commit, unless a stop is due (then it completes alone and stops);
 * a batch's successes complete together in one statement.
 */
int pgwake_run(pgwake_worker *w, pgwake_handler_fn fn, void *arg)
{
    int n = w->claim_batch > 0 ? w->claim_batch : 1;
    pgwake_task **in = calloc((size_t)n, sizeof *in), **ok = calloc((size_t)n, sizeof *ok);
    int *status = calloc((size_t)n, sizeof *status);
    int have = 0, rc;
    if (!in || !ok || !status) {
        pgwk_set_error(w, "out of memory for a claim batch of %d", n);
        rc = PGWAKE_ERROR;
        goto out;
    }
    for (;;) {
        if (have == 0) {
            if (pgwake_fenced(w)) {
                rc = PGWAKE_FENCED;
                break;
            }
            if (pgwake_should_stop(w)) {
                rc = PGWAKE_OK;
                break;
            }
            have = pgwake_claim_batch(w, n, in);
            if (have == PGWAKE_STOPPED) {
                have = 0;
                continue; /* the loop head says why */
            }
            if (have < 0) {
                rc = have;
                break;
            }
            if (have == 0) {
                if (pgwake_wait_idle(w) == PGWAKE_WAKE_STOP) {
                    rc = pgwake_fenced(w) ? PGWAKE_FENCED : PGWAKE_OK;
                    break;
                }
                continue;
            }
        }
        int nok;
        if (handle(w, in, have, ok, &nok, fn, arg) == PGWAKE_ERROR) {
            for (int i = 0; i < nok; i++)
                pgwake_task_free(ok[i]); /* leased until we exit: then released */
            rc = PGWAKE_ERROR;
            break;
        }
        have = 0;
        /* Batches complete apart: a claim of n rows held locked while the
         * completions run makes the other workers' claims step over them
         * (measured: half the throughput at claim_batch = 100). */
        if (nok > 0 && n == 1 && pgwk_claim_begin(w) && !pgwake_fenced(w)) {
            have = pgwk_complete_claim(w, ok, nok, status, n, in);
            int src = settle(w, ok, nok, status);
            if (src == PGWAKE_ERROR) {
                for (int i = 0; i < (have > 0 ? have : 0); i++)
                    pgwake_task_free(in[i]);
                rc = PGWAKE_ERROR;
                break;
            }
            if (have == PGWAKE_STOPPED) {
                have = 0;
                continue;
            }
            if (have < 0) {
                rc = have;
                break;
            }
            if (have == 0 && pgwake_wait_idle(w) == PGWAKE_WAKE_STOP) {
                rc = pgwake_fenced(w) ? PGWAKE_FENCED : PGWAKE_OK;
                break;
            }
            continue;
        }
        if (nok > 0) {
            pgwake_complete_batch(w, ok, nok, status);
            if (settle(w, ok, nok, status) == PGWAKE_ERROR) {
                rc = PGWAKE_ERROR;
                break;
            }
        }
        pgwk_wake_poll(&w->wake);
    }
out:
    free(in);
    free(ok);
    free(status);
    return rc;
}
