/*
 * heartbeat.c - the heartbeat thread. It sleeps on a condition variable (on
 * the monotonic clock) so that pgwake_close() ends it at once, and it owns its
 * own PGconn because a libpq connection must not be shared between threads.
 */
#include "libworker/heartbeat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgwake/worker.h"

/* hb_sleep waits ms or until quit; returns false when the thread must end. */
static bool hb_sleep(void *arg, unsigned ms)
{
    WkHeartbeat *hb = arg;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&hb->mu);
    while (!hb->quit) {
        if (pthread_cond_timedwait(&hb->cond, &hb->mu, &until) == ETIMEDOUT)
            break;
    }
    bool go_on = !hb->quit;
    pthread_mutex_unlock(&hb->mu);
    return go_on;
}

static bool hb_quitting(WkHeartbeat *hb)
{
    pthread_mutex_lock(&hb->mu);
    bool q = hb->quit;
    pthread_mutex_unlock(&hb->mu);
    return q;
}

/*
 * hb_beat sends one heartbeat, reconnecting (with backoff) as long as needed.
 * Returns false when the thread must end: quit, or the worker is fenced.
 */
static bool hb_beat(WkHeartbeat *hb)
{
    const char *params[1] = {hb->worker_id};
    int transient = 0;
    for (;;) {
        if (!pgwk_conn_connect(&hb->conn, -1))
            return false; /* quit while waiting */
        bool lost;
        PGresult *r = pgwk_conn_exec(&hb->conn, "SELECT pgwake.heartbeat($1)", 1, params, &lost);
        if (lost) {
            if (hb_quitting(hb))
                return false;
            continue;
        }
        if (PQresultStatus(r) != PGRES_TUPLES_OK && hb->conn.transient && ++transient < 5) {
            /* a deadlock with our own claim over the workers row: rolled back */
            wk_debug(hb->log, "heartbeat rolled back by a deadlock (retrying)");
            PQclear(r);
            continue;
        }
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            char msg[256];
            pgwk_conn_result_error(&hb->conn, r, msg, sizeof msg);
            wk_warn(hb->log, "heartbeat failed: %s (trying again in %u ms)", msg, hb->interval_ms);
            PQclear(r);
            return true;
        }
        long held = PQgetisnull(r, 0, 0) ? -1 : strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        if (held < 0) {
            wk_warn(hb->log, "worker %s was declared dead: fenced, its leases are others' now",
                    hb->worker_id);
            atomic_store(hb->fenced, true);
            pgwk_wake_interrupt(hb->wake);
            return false;
        }
        wk_debug(hb->log, "heartbeat: %ld lease(s) held", held);
        return true;
    }
}

static void *hb_main(void *arg)
{
    WkHeartbeat *hb = arg;
    while (hb_beat(hb) && hb_sleep(hb, hb->interval_ms))
        ;
    pgwk_conn_close(&hb->conn);
    return NULL;
}

bool pgwk_heartbeat_start(WkHeartbeat *hb, const char *dsn, const char *worker_id,
                          unsigned interval_ms, atomic_bool *fenced, const WkWake *wake,
                          const WkLog *log)
{
    memset(hb, 0, sizeof *hb);
    hb->interval_ms = interval_ms;
    hb->worker_id = worker_id;
    hb->fenced = fenced;
    hb->wake = wake;
    hb->log = log;
    pgwk_conn_init(&hb->conn, dsn, "heartbeat", log, hb_sleep, hb);

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&hb->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0 || pthread_mutex_init(&hb->mu, NULL) != 0) {
        errno = rc ? rc : ENOMEM;
        return false;
    }
    rc = pthread_create(&hb->thread, NULL, hb_main, hb);
    if (rc != 0) {
        pthread_mutex_destroy(&hb->mu);
        pthread_cond_destroy(&hb->cond);
        errno = rc;
        return false;
    }
    hb->running = true;
    return true;
}

void pgwk_heartbeat_stop(WkHeartbeat *hb)
{
    if (!hb->running)
        return;
    pthread_mutex_lock(&hb->mu);
    hb->quit = true;
    pthread_cond_broadcast(&hb->cond);
    pthread_mutex_unlock(&hb->mu);
    pthread_join(hb->thread, NULL);
    pthread_mutex_destroy(&hb->mu);
    pthread_cond_destroy(&hb->cond);
    hb->running = false;
}
