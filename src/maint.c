/* maint.c: health of workers and leases, on the maintenance connection (so a
 * statement waiting on a row lock never holds up the main one). Local
 * workers: one timer at the earliest heartbeat deadline, verdicts only from a
 * fresh read of last_heartbeat (pgwake.expire_worker); one past its deadline
 * whose verdict waits on a lock is stopped at once (worker_hung). Maintenance,
 * held by one daemon at a time through an advisory lock: expire_leases() at
 * the deadlines it returns, and the alert for deaths nobody alerted yet; a
 * refused lock names its holder. Also the database-down alert. */
#include "maint.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "daemon.h"
#include "lockinfo.h"
#include "log.h"
#define REMOTE_RECHECK_MS 1000 /* a new remote worker: look again this soon */
#define MIN_RETRY_MS 100       /* a deadline already past (row busy): not sooner */
#define MAX_SLEEP_MS 3600000   /* re-read at least hourly while deadlines exist */
#define KEPT_TAILS 4            /* last lines of workers freed before their alert went out */
#define LOCAL_BATCH_MS 100     /* the local timer waits this past the earliest deadline, so
                                  deadlines close together share one query */

struct Maint {
    Daemon *d;
    bool holder : 1;          /* holds the maintenance lock on this connection */
    bool expire_inflight : 1;
    bool db_down_alerted : 1;
    bool up : 1;              /* the maintenance connection is usable */
    int expire_failures;      /* in a row: the retry backs off */
    char holder_info[300];    /* who holds the lock when we do not ("" = unknown or us) */
    struct {
        char id[128];
        char tail[TAIL_LINES * TAIL_LINE_MAX];
    } kept[KEPT_TAILS];       /* a ring: maint_alert_dead of a worker about to be freed */
    int kept_next;
    struct event poll_ev;     /* not holder: try the lock every maintenance_poll */
    struct event expire_ev;   /* holder: the next deadline expire_leases returned */
    struct event local_ev;    /* the earliest heartbeat deadline of a local worker */
    struct event dbdown_ev;   /* database unreachable for db_down_alert */
    int64_t down_since_ms;
};

/* ---------------------------------------------------------------- alerts */

static void alert_rows(Maint *m, PGresult *res)
{
    Daemon *d = m->d;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 0);
        Worker *w = daemon_worker_by_id(d, id);
        char tail[TAIL_LINES * TAIL_LINE_MAX];
        tail[0] = '\0';
        if (w)
            tail_join(&w->outbuf.tail, "\n", tail, sizeof tail);
        for (int k = 0; !w && k < KEPT_TAILS; k++)
            if (strcmp(m->kept[k].id, id) == 0)
                snprintf(tail, sizeof tail, "%s", m->kept[k].tail);
        DeadWorker dw = {
            .id = id, .stage = PQgetvalue(res, i, 1), .host = PQgetvalue(res, i, 2),
            .last_seen_s = atof(PQgetvalue(res, i, 4)),
            .task = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5),
            .tail = tail[0] ? tail : NULL, .reason = PQgetvalue(res, i, 6),
        };
        log_warn("worker %s (stage %s, host %s) declared dead: %s, last seen %.0f s ago", dw.id,
                 dw.stage, dw.host, dw.reason, dw.last_seen_s);
        alert_dead_worker(d->alerter, &dw);
    }
}

static void claimed_cb(void *arg, PGresult *res)
{
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        alert_rows(arg, res);
    else if (res)
        log_error("unable to read dead workers for an alert: %s", PQresultErrorMessage(res));
}

/* Claims the alerting of deaths (alerted_at, so each death is alerted once by
 * whoever claims it first) and alerts the claimed ones. ids_sql yields text[]. */
static void claim_and_alert(Maint *m, const char *ids_sql, int n, const char *const *p)
{
    if (!m->d->alerter || !alert_enabled(m->d->alerter))
        return;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT * FROM pgwake.dead_worker_info(ARRAY(SELECT pgwake.mark_alerted(%s)))", ids_sql);
    if (!db_query(m->d->mdb, sql, n, p, 0, claimed_cb, m))
        log_error("out of memory queueing a dead-worker alert");
}

/* maint_alert_dead alerts the death of a local worker (once, whoever claims
 * it first); one already reaped (a hung worker stopped before its verdict,
 * alerted once its release is done) leaves its last lines here for the alert. */
void maint_alert_dead(Maint *m, const Worker *w)
{
    if (w->state == WK_EXITED) {
        int k = m->kept_next++ % KEPT_TAILS;
        snprintf(m->kept[k].id, sizeof m->kept[k].id, "%s", w->id);
        tail_join(&w->outbuf.tail, "\n", m->kept[k].tail, sizeof m->kept[k].tail);
    }
    char lit[200];
    snprintf(lit, sizeof lit, "{\"%s\"}", w->id);
    const char *p[] = {lit};
    claim_and_alert(m, "$1::text[]", 1, p);
}

/* ---------------------------------------------------------------- local workers */

static bool watched(const Worker *w)
{
    return w->id[0] && w->pid > 0 && w->state != WK_EXITED && w->state != WK_REGISTERING &&
           !w->declared_dead;
}

/* maint_rearm_local sets the one local timer at the earliest deadline. */
void maint_rearm_local(Maint *m)
{
    Daemon *d = m->d;
    int64_t first = 0;
    for (int i = 0; i < d->nstages; i++)
        for (Worker *w = d->stages[i]->workers; w; w = w->next)
            if (watched(w) && !w->hb_inflight && (!first || w->hb_deadline_ms < first))
                first = w->hb_deadline_ms;
    event_del(&m->local_ev);
    if (first)
        timer_arm_ms(&m->local_ev, first + LOCAL_BATCH_MS - mono_ms());
}

/* The verdict of one worker's deadline (arg is the worker: worker_retire
 * cancels the callback of a worker gone meanwhile). */
static void local_cb(void *arg, PGresult *res)
{
    Worker *w = arg;
    Maint *m = w->stage->d->maint;
    w->hb_inflight = false;
    if (!res || !watched(w)) {
        maint_rearm_local(m);
        return;
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
            wlog_warn(w, "past its heartbeat or task_timeout deadline: declared dead, leases released");
            worker_declared_dead(w);
            maint_alert_dead(m, w);
        } else if (!PQgetisnull(res, 0, 1)) {
            w->hb_deadline_ms = mono_ms() + (int64_t)(atof(PQgetvalue(res, 0, 1)) * 1000.0) + 1;
        } else {
            w->hb_deadline_ms = mono_ms() + w->stage->conf->heartbeat_timeout_ms;
        }
    } else if (strcmp(db_sqlstate(res), "55P03") == 0) {
        /* expire_worker locks rows only once its plain read found the deadline
         * past: a lock timeout means "due, but someone holds its rows". */
        worker_hung(w);
    } else {
        wlog_warn(w, "unable to check its heartbeat deadline: %s (again in %d ms)",
                  PQresultErrorMessage(res), MIN_RETRY_MS * 10);
        w->hb_deadline_ms = mono_ms() + MIN_RETRY_MS * 10;
    }
    maint_rearm_local(m);
}

/* At the earliest deadline: read every due worker's last_heartbeat afresh,
 * one statement each (one worker's locked rows must not hold up another's
 * verdict); past it, pgwake.expire_worker declares it dead and releases its
 * leases in the same call. No verdict without the database. The holder does
 * this too: its expire_leases() may be the statement a lock holds up. */
static void local_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    Maint *m = arg;
    Daemon *d = m->d;
    if (!m->up || !db_ready(d->mdb))
        return;
    int64_t now = mono_ms();
    for (int i = 0; i < d->nstages; i++)
        for (Worker *w = d->stages[i]->workers; w; w = w->next) {
            if (!watched(w) || w->hb_inflight || w->hb_deadline_ms > now + 5)
                continue;
            const char *p[] = {w->id};
            w->hb_inflight = db_query(d->mdb, "SELECT dead, next_deadline_s FROM pgwake.expire_worker($1)",
                                      1, p, 0, local_cb, w);
        }
    maint_rearm_local(m);
}

/* maint_worker_started arms the heartbeat deadline of a new local worker:
 * registration plus heartbeat_timeout, then whatever the database says. */
void maint_worker_started(Maint *m, Worker *w)
{
    w->hb_deadline_ms = mono_ms() + w->stage->conf->heartbeat_timeout_ms;
    maint_rearm_local(m);
}

/* ---------------------------------------------------------------- maintenance */

/* The dead workers expire_leases declared (a text[] literal of ids without
 * quotes or commas, as pgwake makes them): our own are stopped at once, a
 * verdict of our own query; the notification that follows finds them ended. */
static void declare_local(Maint *m, const char *arr)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", arr[0] == '{' ? arr + 1 : arr);
    char *save = NULL;
    for (char *id = strtok_r(buf, ",}", &save); id; id = strtok_r(NULL, ",}", &save)) {
        Worker *w = daemon_worker_by_id(m->d, id);
        if (w)
            worker_declared_dead(w);
    }
}

static void expire_cb(void *arg, PGresult *res)
{
    Maint *m = arg;
    m->expire_inflight = false;
    if (!res)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        /* E.g. a lock timeout: a session holds a row it must change. Back off. */
        int64_t ms = MIN_RETRY_MS;
        for (int i = 0; i <= m->expire_failures && ms < m->d->cfg->maintenance_poll_ms; i++)
            ms *= 2;
        if (ms > m->d->cfg->maintenance_poll_ms)
            ms = m->d->cfg->maintenance_poll_ms;
        m->expire_failures++;
        log_error("expire_leases failed: %s (again in %lld ms)", PQresultErrorMessage(res),
                  (long long)ms);
        timer_arm_ms(&m->expire_ev, ms);
        return;
    }
    m->expire_failures = 0;
    int released = atoi(PQgetvalue(res, 0, 0));
    const char *dead = PQgetvalue(res, 0, 1);
    if (released || strcmp(dead, "{}") != 0)
        log_info("maintenance: %d lease(s) released, dead workers %s", released, dead);
    declare_local(m, dead);
    claim_and_alert(m, "ARRAY(SELECT pgwake.unalerted_deaths())", 0, NULL);
    if (!PQgetisnull(res, 0, 2)) {
        int64_t ms = (int64_t)(atof(PQgetvalue(res, 0, 2)) * 1000.0) + 1;
        timer_arm_ms(&m->expire_ev, ms < MIN_RETRY_MS   ? MIN_RETRY_MS
                                    : ms > MAX_SLEEP_MS ? MAX_SLEEP_MS
                                                        : ms);
    }
}

static void expire_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    Maint *m = arg;
    if (!m->holder || !db_ready(m->d->mdb) || m->expire_inflight)
        return;
    m->expire_inflight = db_query(m->d->mdb, "SELECT released, dead_workers, next_deadline_s"
                                            " FROM pgwake.expire_leases()", 0, NULL, 0, expire_cb, m);
}

static void lock_cb(void *arg, PGresult *res)
{
    Maint *m = arg;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (res)
            log_error("unable to try the maintenance lock: %s", PQresultErrorMessage(res));
        if (res && m->up)
            timer_arm_ms(&m->poll_ev, m->d->cfg->maintenance_poll_ms);
        return;
    }
    bool got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (got && !m->holder)
        log_info("maintenance: this daemon holds it (expire_leases at each deadline)");
    m->holder = got;
    if (got) {
        m->holder_info[0] = '\0';
        event_del(&m->poll_ev);
        timer_arm_ms(&m->expire_ev, 0);
        return;
    }
    /* pg_try_advisory_lock is open to every role: say who keeps it, once per holder. */
    char info[sizeof m->holder_info];
    lockinfo_describe(res, 0, 1, info, sizeof info);
    if (strcmp(info, m->holder_info) != 0)
        log_info("maintenance: held by another session (%s); trying again every %lld ms", info,
                 (long long)m->d->cfg->maintenance_poll_ms);
    snprintf(m->holder_info, sizeof m->holder_info, "%s", info);
    timer_arm_ms(&m->poll_ev, m->d->cfg->maintenance_poll_ms);
}

static void try_lock(Maint *m)
{
    if (!db_query(m->d->mdb, LOCK_TRY_SQL(LOCK_KEY_MAINT), 0, NULL, 0, lock_cb, m))
        log_error("out of memory queueing the maintenance lock");
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    Maint *m = arg;
    if (m->holder || !m->up || !db_ready(m->d->mdb))
        return;
    try_lock(m);
}

/* maint_remote_change: a worker registered or ended somewhere; the holder
 * looks at the deadlines again soon (they are what expire_leases returns). */
void maint_remote_change(Maint *m)
{
    if (!m->holder)
        return;
    struct timeval left;
    if (evtimer_pending(&m->expire_ev, &left)) {
        struct timeval now;
        event_base_gettimeofday_cached(m->d->base, &now);
        int64_t due = ((int64_t)left.tv_sec - now.tv_sec) * 1000 + (left.tv_usec - now.tv_usec) / 1000;
        if (due <= REMOTE_RECHECK_MS)
            return;
    }
    timer_arm_ms(&m->expire_ev, REMOTE_RECHECK_MS);
}

bool maint_holder(const Maint *m) { return m->holder; }

/* maint_holder_info says who holds maintenance when this daemon does not
 * (NULL when unknown or when we hold it). */
const char *maint_holder_info(const Maint *m)
{
    return !m->holder && m->holder_info[0] ? m->holder_info : NULL;
}

/* ---------------------------------------------------------------- database up and down */

static void dbdown_cb(evutil_socket_t fd, short what, void *arg)
{
    Maint *m = arg;
    Daemon *d = m->d;
    if (d->db_up || !d->alerter)
        return;
    m->db_down_alerted = true;
    alert_db_down(d->alerter, (double)(mono_ms() - m->down_since_ms) / 1000.0, db_last_error(d->db));
}

/* maint_conn_up: the maintenance connection is usable: try the lock, read
 * every local deadline again (what happened while away is in the rows). */
void maint_conn_up(Maint *m)
{
    Daemon *d = m->d;
    m->up = true;
    for (int i = 0; i < d->nstages; i++)
        for (Worker *w = d->stages[i]->workers; w; w = w->next)
            w->hb_inflight = false;
    try_lock(m);
    timer_arm_ms(&m->local_ev, 0);
}

/* maint_conn_down: the lock went with the session; deadlines wait for it. */
void maint_conn_down(Maint *m)
{
    if (m->holder)
        log_warn("maintenance: lost with the database connection");
    m->holder = false;
    m->up = false;
    m->expire_inflight = false;
    event_del(&m->poll_ev);
    event_del(&m->expire_ev);
    event_del(&m->local_ev);
}

/* maint_on_ready: the main connection's start-up is done: a database-down
 * alert gets its recovery. */
void maint_on_ready(Maint *m)
{
    Daemon *d = m->d;
    event_del(&m->dbdown_ev);
    if (m->db_down_alerted && d->alerter)
        alert_db_recovered(d->alerter, (double)(mono_ms() - m->down_since_ms) / 1000.0);
    m->db_down_alerted = false;
    m->down_since_ms = 0;
}

/* maint_on_down: the main connection is lost: the database-down alert waits
 * db_down_alert. */
void maint_on_down(Maint *m)
{
    if (!m->down_since_ms) {
        m->down_since_ms = mono_ms();
        if (m->d->alerter)
            timer_arm_ms(&m->dbdown_ev, m->d->cfg->alerts.db_down_alert_ms);
    }
}

/* maint_new prepares the timers; nothing runs before the first connection. */
Maint *maint_new(Daemon *d)
{
    Maint *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->d = d;
    evtimer_assign(&m->poll_ev, d->base, poll_cb, m);
    evtimer_assign(&m->expire_ev, d->base, expire_timer_cb, m);
    evtimer_assign(&m->local_ev, d->base, local_timer_cb, m);
    evtimer_assign(&m->dbdown_ev, d->base, dbdown_cb, m);
    return m;
}

void maint_free(Maint *m)
{
    if (!m)
        return;
    event_del(&m->poll_ev);
    event_del(&m->expire_ev);
    event_del(&m->local_ev);
    event_del(&m->dbdown_ev);
    db_cancel_arg(m->d->mdb, m);
    free(m);
}
