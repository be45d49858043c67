/* maint.c: health of workers and leases. Local workers: one timer at the
 * earliest heartbeat deadline, verdicts only from a fresh read of
 * last_heartbeat (pgwake.expire_worker). Maintenance, held by one daemon at a
 * time through an advisory lock: expire_leases() at the deadlines it returns,
 * and the alert for deaths nobody alerted yet. Also the database-down alert. */
#include "maint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "daemon.h"
#include "log.h"

/* An arbitrary constant: the maintenance lock of every daemon of a database. */
#define MAINT_LOCK_KEY "7040119002"
#define REMOTE_RECHECK_MS 1000 /* a new remote worker: look again this soon */
#define MIN_RETRY_MS 100       /* a deadline already past (row busy): not sooner */
#define MAX_SLEEP_MS 3600000   /* re-read at least hourly while deadlines exist */
#define LOCAL_BATCH_MS 100     /* the local timer waits this past the earliest deadline, so
                                  deadlines close together share one query */

struct Maint {
    Daemon *d;
    bool holder : 1;          /* holds the maintenance lock on this connection */
    bool expire_inflight : 1;
    bool local_inflight : 1;
    bool db_down_alerted : 1;
    struct event poll_ev;     /* not holder: try the lock every maintenance_poll */
    struct event expire_ev;   /* holder: the next deadline expire_leases returned */
    struct event local_ev;    /* the earliest heartbeat deadline of a local worker */
    struct event dbdown_ev;   /* database unreachable for db_down_alert */
    int64_t down_since_ms;
};

static void add_ms(struct event *ev, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    if (event_add(ev, &tv))
        fatal("event_add failed for a maintenance timer");
}

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
    if (!db_query(m->d->db, sql, n, p, 0, claimed_cb, m))
        log_error("out of memory queueing a dead-worker alert");
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
            if (watched(w) && (!first || w->hb_deadline_ms < first))
                first = w->hb_deadline_ms;
    event_del(&m->local_ev);
    if (first && !m->local_inflight)
        add_ms(&m->local_ev, first + LOCAL_BATCH_MS - mono_ms());
}

static void local_cb(void *arg, PGresult *res)
{
    Maint *m = arg;
    Daemon *d = m->d;
    m->local_inflight = false;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        char dead[4096];
        size_t n = 0;
        dead[0] = '\0';
        for (int i = 0; i < PQntuples(res); i++) {
            Worker *w = daemon_worker_by_id(d, PQgetvalue(res, i, 0));
            if (!w || !watched(w))
                continue;
            if (strcmp(PQgetvalue(res, i, 1), "t") == 0) {
                wlog_warn(w, "past its heartbeat or task_timeout deadline: declared dead, leases released");
                if (n + strlen(w->id) + 2 < sizeof dead)
                    n += (size_t)snprintf(dead + n, sizeof dead - n, "%s%s", n ? "," : "", w->id);
                worker_declared_dead(w);
            } else if (!PQgetisnull(res, i, 2)) {
                w->hb_deadline_ms = mono_ms() + (int64_t)(atof(PQgetvalue(res, i, 2)) * 1000.0) + 1;
            } else {
                w->hb_deadline_ms = mono_ms() + w->stage->conf->heartbeat_timeout_ms;
            }
        }
        if (n) {
            char lit[4200];
            snprintf(lit, sizeof lit, "{%s}", dead);
            const char *p[] = {lit};
            claim_and_alert(m, "$1::text[]", 1, p);
        }
    } else if (res) {
        log_error("unable to check heartbeat deadlines: %s", PQresultErrorMessage(res));
    }
    maint_rearm_local(m);
}

/* At the earliest deadline: read every due worker's last_heartbeat afresh;
 * past it, pgwake.expire_worker declares it dead and releases its leases in
 * the same call. No verdict without the database. */
static void local_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    Maint *m = arg;
    Daemon *d = m->d;
    if (!db_ready(d->db) || m->local_inflight)
        return;
    /* The maintenance holder's expire_leases() covers local workers too (and
     * the death notification reaches worker_declared_dead): no per-worker reads. */
    if (m->holder)
        return;
    int64_t now = mono_ms();
    char ids[4096];
    size_t n = 0;
    for (int i = 0; i < d->nstages; i++)
        for (Worker *w = d->stages[i]->workers; w; w = w->next)
            if (watched(w) && w->hb_deadline_ms <= now + 5 && n + strlen(w->id) + 2 < sizeof ids)
                n += (size_t)snprintf(ids + n, sizeof ids - n, "%s%s", n ? "," : "{", w->id);
    if (!n) {
        maint_rearm_local(m);
        return;
    }
    snprintf(ids + n, sizeof ids - n, "}");
    const char *p[] = {ids};
    m->local_inflight = db_query(d->db,
                                 "SELECT e.wid, x.dead, x.next_deadline_s FROM unnest($1::text[]) AS e(wid),"
                                 " LATERAL pgwake.expire_worker(e.wid) x", 1, p, 0, local_cb, m);
}

/* maint_worker_started arms the heartbeat deadline of a new local worker:
 * registration plus heartbeat_timeout, then whatever the database says. */
void maint_worker_started(Maint *m, Worker *w)
{
    w->hb_deadline_ms = mono_ms() + w->stage->conf->heartbeat_timeout_ms;
    maint_rearm_local(m);
}

/* ---------------------------------------------------------------- maintenance */

static void expire_cb(void *arg, PGresult *res)
{
    Maint *m = arg;
    m->expire_inflight = false;
    if (!res)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        log_error("expire_leases failed: %s", PQresultErrorMessage(res));
        add_ms(&m->expire_ev, m->d->cfg->maintenance_poll_ms);
        return;
    }
    int released = atoi(PQgetvalue(res, 0, 0));
    const char *dead = PQgetvalue(res, 0, 1);
    if (released || strcmp(dead, "{}") != 0)
        log_info("maintenance: %d lease(s) released, dead workers %s", released, dead);
    claim_and_alert(m, "ARRAY(SELECT pgwake.unalerted_deaths())", 0, NULL);
    if (!PQgetisnull(res, 0, 2)) {
        int64_t ms = (int64_t)(atof(PQgetvalue(res, 0, 2)) * 1000.0) + 1;
        add_ms(&m->expire_ev, ms < MIN_RETRY_MS ? MIN_RETRY_MS : ms > MAX_SLEEP_MS ? MAX_SLEEP_MS : ms);
    }
}

static void expire_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    Maint *m = arg;
    if (!m->holder || !db_ready(m->d->db) || m->expire_inflight)
        return;
    m->expire_inflight = db_query(m->d->db, "SELECT released, dead_workers, next_deadline_s"
                                            " FROM pgwake.expire_leases()", 0, NULL, 0, expire_cb, m);
}

static void lock_cb(void *arg, PGresult *res)
{
    Maint *m = arg;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK)
        return;
    bool got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (got && !m->holder)
        log_info("maintenance: this daemon holds it (expire_leases at each deadline)");
    m->holder = got;
    if (got) {
        event_del(&m->poll_ev);
        add_ms(&m->expire_ev, 0);
    } else {
        add_ms(&m->poll_ev, m->d->cfg->maintenance_poll_ms);
    }
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    Maint *m = arg;
    if (m->holder || !db_ready(m->d->db))
        return;
    if (!db_query(m->d->db, "SELECT pg_catalog.pg_try_advisory_lock(" MAINT_LOCK_KEY ")", 0, NULL, 0,
                  lock_cb, m))
        log_error("out of memory queueing the maintenance lock");
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
    add_ms(&m->expire_ev, REMOTE_RECHECK_MS);
}

bool maint_holder(const Maint *m) { return m->holder; }

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

/* maint_on_connect queues the maintenance try-lock in the start-up sequence. */
void maint_on_connect(Maint *m)
{
    if (!db_query(m->d->db, "SELECT pg_catalog.pg_try_advisory_lock(" MAINT_LOCK_KEY ")", 0, NULL,
                  DBQ_SETUP, lock_cb, m))
        fatal("out of memory queueing the maintenance lock");
}

/* maint_on_ready: start-up done on a connection: every local deadline is
 * read again, and a database-down alert gets its recovery. */
void maint_on_ready(Maint *m)
{
    Daemon *d = m->d;
    event_del(&m->dbdown_ev);
    if (m->db_down_alerted && d->alerter)
        alert_db_recovered(d->alerter, (double)(mono_ms() - m->down_since_ms) / 1000.0);
    m->db_down_alerted = false;
    m->down_since_ms = 0;
    m->local_inflight = false;
    add_ms(&m->local_ev, 0);
}

/* maint_on_down: the lock went with the session; deadlines wait for the database. */
void maint_on_down(Maint *m)
{
    if (m->holder)
        log_warn("maintenance: lost with the database connection");
    m->holder = false;
    m->expire_inflight = m->local_inflight = false;
    event_del(&m->poll_ev);
    event_del(&m->expire_ev);
    event_del(&m->local_ev);
    if (!m->down_since_ms) {
        m->down_since_ms = mono_ms();
        if (m->d->alerter)
            add_ms(&m->dbdown_ev, m->d->cfg->alerts.db_down_alert_ms);
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
    db_cancel_arg(m->d->db, m);
    free(m);
}
