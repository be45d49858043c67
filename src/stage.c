/* stage.c: a stage decides how many workers it wants. Every hint raises its
 * generation; recounts (one in flight, >= 10 ms apart) say how much work is
 * claimable; idle workers are woken first, then workers are spawned within
 * max_workers, outside restart backoff and FATAL. */
#include "stage.h"
#include "clock.h"
#include "trends.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

#define RECOUNT_SPACING_MS 10      /* at least this between two recounts of a stage */
#define RECOUNT_SPACING_MAX_MS 640 /* ... growing to this while hints find nothing */

static void recount_timer_cb(evutil_socket_t fd, short what, void *arg);
static void notbefore_cb(evutil_socket_t fd, short what, void *arg);
static void backoff_cb(evutil_socket_t fd, short what, void *arg);
static void refill_cb(evutil_socket_t fd, short what, void *arg);
static void cap_cb(evutil_socket_t fd, short what, void *arg);

/* stage_new builds a stage for conf, opening its worker log file. */
Stage *stage_new(Daemon *d, const StageConf *conf, const Config *cfg, char *err)
{
    Stage *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, ERR_LEN, "out of memory");
        return NULL;
    }
    s->d = d;
    s->conf = conf;
    s->cfg = cfg;
    snprintf(s->name, sizeof s->name, "%s", conf->name);
    s->log = outlog_open(cfg->log_dir, s->name, cfg->log_max_bytes, cfg->log_backups, err, ERR_LEN);
    if (!s->log) {
        free(s);
        return NULL;
    }
    evtimer_assign(&s->recount_ev, d->base, recount_timer_cb, s);
    evtimer_assign(&s->notbefore_ev, d->base, notbefore_cb, s);
    evtimer_assign(&s->backoff_ev, d->base, backoff_cb, s);
    evtimer_assign(&s->refill_ev, d->base, refill_cb, s);
    evtimer_assign(&s->cap_ev, d->base, cap_cb, s);
    backoff_init(&s->backoff, conf->restart_delay_ms, conf->restart_delay_max_ms);
    s->spacing_ms = RECOUNT_SPACING_MS;
    return s;
}

/* stage_free releases a stage that has no worker left. */
void stage_free(Stage *s)
{
    if (!s)
        return;
    while (s->workers)
        worker_free(s->workers);
    event_del(&s->recount_ev);
    event_del(&s->notbefore_ev);
    event_del(&s->backoff_ev);
    event_del(&s->refill_ev);
    event_del(&s->cap_ev);
    db_cancel_arg(s->d->db, s);
    outlog_close(s->log);
    free(s);
}

/* stage_alive counts every worker not yet reaped (registering and stopping included). */
int stage_alive(const Stage *s)
{
    int n = 0;
    for (int i = 0; i < WK__COUNT; i++)
        if (i != WK_EXITED)
            n += s->count[i];
    return n;
}

/* stage_runnable: may this stage wake or spawn workers at all? */
bool stage_runnable(const Stage *s)
{
    return !s->fatal && !s->stopped && !s->removed && !s->d->stopping;
}

static int spawn_n(Stage *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!worker_create(s)) {
            log_error("%s: out of memory creating a worker", s->name);
            return i;
        }
    return n;
}

static Worker *find_state(Stage *s, WorkerState st)
{
    for (Worker *w = s->workers; w; w = w->next)
        if (w->state == st)
            return w;
    return NULL;
}

/* With C claimable tasks: wake idle workers first, then spawn (SPEC section 5). */
static void apply_count(Stage *s, int c)
{
    if (!stage_runnable(s) || !db_ready(s->d->db))
        return;
    const StageConf *conf = s->conf;
    /* Woken = told W since this recount began: a worker busy for an hour
     * with an older task will not claim these soon. */
    int woken = 0;
    for (Worker *w = s->workers; w; w = w->next)
        if (w->state == WK_BUSY && w->gen >= s->recount_gen)
            woken++;
    int to_wake = c - woken;
    while (to_wake > 0) {
        Worker *w = find_state(s, WK_IDLE);
        if (!w || !worker_wake(w))
            break;
        to_wake--;
        woken++;
    }
    int alive = stage_alive(s);
    int starting = s->count[WK_STARTING] + s->count[WK_REGISTERING];
    if (!s->in_backoff && !s->capped) {
        int n = c - woken - starting;
        if (n > conf->max_workers - alive)
            n = conf->max_workers - alive;
        if (n > 0) {
            log_debug("%s: %d claimable, %d woken, %d starting: spawning %d", s->name, c, woken,
                      starting, n);
            spawn_n(s, n);
            alive += n;
        }
        if (alive < conf->min_workers && !s->refill_due)
            spawn_n(s, conf->min_workers - alive);
    }
}

static void recount_cb(void *arg, PGresult *res)
{
    Stage *s = arg;
    s->recount_inflight = false;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) >= 1 && PQnfields(res) >= 1) {
        long c = PQgetisnull(res, 0, 0) ? 0 : atol(PQgetvalue(res, 0, 0));
        if (c < 0)
            c = 0;
        if (c > s->conf->max_workers)
            c = s->conf->max_workers;
        event_del(&s->notbefore_ev);
        if (!s->conf->pending_sql && PQnfields(res) >= 2 && !PQgetisnull(res, 0, 1)) {
            /* A retry waiting out its backoff notifies nothing when it falls due. */
            double next_s = atof(PQgetvalue(res, 0, 1));
            timer_arm_ms(&s->notbefore_ev, (int64_t)(next_s * 1000.0) + 2);
        }
        s->claimable = (int)c;
        trends_note(s);
        if (c > 0)
            s->gen++;
        else
            s->hint_at = 0; /* nothing to wake for */
        /* Hints that keep finding nothing (a storm of bare NOTIFYs) space the
         * recounts out, up to RECOUNT_SPACING_MAX_MS; work found, or a quiet
         * moment, brings the spacing back. The fast path never waits for it. */
        if (c == 0 && s->recount_again)
            s->spacing_ms = s->spacing_ms * 2 > RECOUNT_SPACING_MAX_MS ? RECOUNT_SPACING_MAX_MS
                                                                        : s->spacing_ms * 2;
        else
            s->spacing_ms = RECOUNT_SPACING_MS;
        log_noise("%s: recount: %ld claimable", s->name, c);
        apply_count(s, (int)c);
    } else if (res) {
        const char *e = PQresultErrorMessage(res);
        log_error("%s: unable to count pending work%s: %s", s->name,
                  s->conf->pending_sql ? " (pending_sql)" : "",
                  *e ? e : "the query returned no row");
    }
    if (s->recount_again) {
        s->recount_again = false;
        stage_recount(s);
    }
}

/* stage_recount asks the database how much work is claimable: at most one
 * recount in flight per stage and none closer than 10 ms to the last, so a
 * burst of notifications costs a handful of queries. */
void stage_recount(Stage *s)
{
    Daemon *d = s->d;
    if (!db_ready(d->db) || s->removed)
        return;
    if (s->recount_inflight) {
        s->recount_again = true;
        return;
    }
    int64_t wait = s->last_recount_ms + s->spacing_ms - mono_ms();
    if (s->last_recount_ms && wait > 0) {
        if (!evtimer_pending(&s->recount_ev, NULL))
            timer_arm_ms(&s->recount_ev, wait);
        return;
    }
    event_del(&s->recount_ev);
    s->last_recount_ms = mono_ms();
    s->recount_gen = s->gen;
    s->recount_inflight = true;
    s->st.recounts++;
    d->st.recounts++;
    bool ok;
    if (s->conf->pending_sql) {
        ok = db_query(d->db, s->conf->pending_sql, 0, NULL, 0, recount_cb, s);
    } else {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", s->conf->max_workers);
        const char *p[] = {s->name, lim};
        ok = db_query(d->db, "SELECT claimable, next_s FROM pgwake.stage_pending($1, $2::int)", 2, p,
                      0, recount_cb, s);
    }
    if (!ok) {
        s->recount_inflight = false;
        log_error("%s: out of memory queueing a recount", s->name);
    }
}

/* stage_hint: something says work may exist. The fast path (a task or run
 * notification proves it) acts before any query: wake one idle worker, or
 * spawn one when none is starting; then a recount settles the numbers. */
void stage_hint(Stage *s, bool fast)
{
    s->gen++;
    if (s->hint_at == 0)
        s->hint_at = metrics_now();
    if (fast && stage_runnable(s) && db_ready(s->d->db)) {
        s->st.fast_paths++;
        Worker *w = find_state(s, WK_IDLE);
        bool acted = false;
        if (w)
            acted = worker_wake(w);
        else if (s->count[WK_STARTING] + s->count[WK_REGISTERING] == 0 && !s->in_backoff &&
                 !s->capped && stage_alive(s) < s->conf->max_workers)
            acted = spawn_n(s, 1) > 0;
        /* The fast path did the urgent part; its recount waits one spacing so
         * it does not race the woken worker's claim for the same CPU. */
        if (acted && !s->recount_inflight && !evtimer_pending(&s->recount_ev, NULL)) {
            s->last_recount_ms = mono_ms();
            timer_arm_ms(&s->recount_ev, s->spacing_ms);
            return;
        }
    }
    stage_recount(s);
}

static void recount_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    stage_recount(arg);
}

static void notbefore_cb(evutil_socket_t fd, short what, void *arg)
{
    Stage *s = arg;
    s->gen++;
    stage_recount(s);
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    Stage *s = arg;
    s->in_backoff = false;
    if (stage_runnable(s))
        s->st.restarts++;
    stage_recount(s);
}

static void cap_cb(evutil_socket_t fd, short what, void *arg)
{
    Stage *s = arg;
    s->capped = false;
    stage_recount(s);
}

/* stage_woke records a W sent: the time since the oldest unanswered hint
 * feeds the notification-to-W histogram of /metrics. */
void stage_woke(Stage *s)
{
    s->st.wakes++;
    if (s->hint_at > 0) {
        hist_observe(&s->st.wake_latency, metrics_now() - s->hint_at);
        s->hint_at = 0;
    }
}

/* stage_capped: max_workers_total refused a registration (other daemons run
 * the stage's quota); spawning waits restart_delay, then recounts. */
void stage_capped(Stage *s)
{
    s->capped = true;
    event_del(&s->cap_ev);
    timer_arm_ms(&s->cap_ev, s->conf->restart_delay_ms);
}

static void refill_cb(evutil_socket_t fd, short what, void *arg)
{
    Stage *s = arg;
    s->refill_due = false;
    stage_recount(s);
}

/* stage_worker_gone: a worker was reaped (or never started). Crashes start the
 * restart backoff; a worker that ran restart_window or exited 0 resets it. */
void stage_worker_gone(Stage *s, Worker *w, bool crashed, bool exit_ok)
{
    int64_t now = mono_ms();
    if (exit_ok || (w->spawned_ms && now - w->spawned_ms >= s->conf->restart_window_ms))
        backoff_reset(&s->backoff);
    if (crashed) {
        s->st.crashes++;
        int64_t delay = backoff_next(&s->backoff, daemon_rand, s->d);
        s->in_backoff = true;
        event_del(&s->backoff_ev);
        timer_arm_ms(&s->backoff_ev, delay);
        log_info("%s: restart backoff %lld ms", s->name, (long long)delay);
    }
    if (stage_runnable(s) && stage_alive(s) < s->conf->min_workers && !s->refill_due) {
        s->refill_due = true;
        timer_arm_ms(&s->refill_ev, s->conf->restart_delay_ms);
    }
    stage_roll(s);
    /* After a crash the release to come notifies pgwake_task, and the backoff's
     * end recounts: a recount now would count the task still leased. */
    if (!crashed)
        stage_recount(s);
}

/* stage_crash_settled: the database has released a crashed worker's leases;
 * a counted crash goes into the tally, which may make the stage FATAL. */
void stage_crash_settled(Stage *s, bool counted, const char *reason)
{
    if (!counted || s->fatal)
        return;
    int64_t now = mono_ms();
    tally_add(&s->tally, now);
    int n = tally_count_within(&s->tally, now, s->conf->restart_window_ms);
    if (s->conf->max_restarts > 0 && n >= s->conf->max_restarts) {
        char why[sizeof s->fatal_reason];
        snprintf(why, sizeof why, "%d crashes within %lld s, last: %s", n,
                 (long long)(s->conf->restart_window_ms / 1000), reason);
        stage_set_fatal(s, why);
    }
}

/* stage_record_state writes what this daemon reports of the stage into
 * pgwake.stage_state, so FATAL and stops are visible and survive a restart. */
void stage_record_state(Stage *s)
{
    const char *state = s->stopped ? "stopped" : s->fatal ? "fatal" : "running";
    const char *p[] = {s->name, s->d->cfg->host, state, s->fatal ? s->fatal_reason : NULL};
    char label[120];
    snprintf(label, sizeof label, "record the state of stage %s", s->name);
    if (!db_query_persist(s->d->db, label, "SELECT pgwake.set_stage_state($1, $2, $3, $4)", 4, p,
                          NULL, NULL))
        log_error("%s: out of memory recording the stage state", s->name);
}

/* stage_set_fatal stops restarting a crash-looping stage until an operator
 * start or a reload that changes it. */
void stage_set_fatal(Stage *s, const char *reason)
{
    s->fatal = true;
    snprintf(s->fatal_reason, sizeof s->fatal_reason, "%s", reason);
    s->in_backoff = false;
    event_del(&s->backoff_ev);
    log_error("%s: stage is FATAL: %s (no restart until `pgwake start %s` or a reload changing it)",
              s->name, reason, s->name);
    stage_record_state(s);
    alert_stage_fatal(s->d->alerter, s->name, reason);
}

/* stage_stop_all asks every worker of the stage to stop. */
void stage_stop_all(Stage *s, const char *why)
{
    for (Worker *w = s->workers; w; w = w->next)
        worker_stop(w, why);
}

/* stage_start clears FATAL and operator stops, resets backoff and tally. */
void stage_start(Stage *s)
{
    bool changed = s->fatal || s->stopped;
    s->fatal = s->stopped = false;
    s->fatal_reason[0] = '\0';
    s->in_backoff = false;
    event_del(&s->backoff_ev);
    backoff_reset(&s->backoff);
    tally_clear(&s->tally);
    if (changed)
        log_info("%s: stage started", s->name);
    stage_record_state(s);
    s->gen++;
    stage_recount(s);
}

/* stage_stop is an operator stop: persisted, every worker asked to stop. */
void stage_stop(Stage *s)
{
    s->stopped = true;
    log_info("%s: stage stopped by the operator", s->name);
    stage_record_state(s);
    stage_stop_all(s, "stage stopped");
}

/* stage_roll restarts outdated workers one at a time (after a reload or a
 * restart command), each after its current task; idle ones go first. */
void stage_roll(Stage *s)
{
    /* Below min_workers (a replacement not running yet): wait for it. */
    if (s->count[WK_STARTING] + s->count[WK_BUSY] + s->count[WK_IDLE] < s->conf->min_workers)
        return;
    Worker *pick = NULL;
    for (Worker *w = s->workers; w; w = w->next) {
        if (w->rolling && w->state == WK_STOPPING)
            return;
        if (w->conf_gen < s->conf_gen &&
            (w->state == WK_IDLE || w->state == WK_BUSY || w->state == WK_STARTING) &&
            (!pick || w->state == WK_IDLE))
            pick = w;
    }
    if (pick) {
        pick->rolling = true;
        worker_stop(pick, "rolling restart");
    }
}

/* stage_restart is a rolling restart on request (`pgwake restart`, e.g. after
 * a deploy): every current worker is replaced, one at a time. */
void stage_restart(Stage *s)
{
    s->conf_gen++;
    log_info("%s: restarting its workers one at a time", s->name);
    if (s->fatal || s->stopped)
        stage_start(s);
    stage_roll(s);
}

/* stage_apply_conf switches a stage to a reloaded configuration. */
void stage_apply_conf(Stage *s, const StageConf *conf, const Config *cfg, unsigned diff)
{
    s->conf = conf;
    s->cfg = cfg;
    backoff_set_limits(&s->backoff, conf->restart_delay_ms, conf->restart_delay_max_ms);
    outlog_set_limits(s->log, cfg->log_max_bytes, cfg->log_backups);
    if (diff && s->fatal)
        stage_start(s);
    if (diff & (CFG_DIFF_RESTART | CFG_DIFF_RESTART_ALL)) {
        s->conf_gen++;
        log_info("%s: configuration changed: restarting its workers one at a time", s->name);
        stage_roll(s);
    }
    /* A lower max_workers: stop the excess, idle workers first. */
    int excess = stage_alive(s) - s->count[WK_STOPPING] - conf->max_workers;
    for (int pass = 0; pass < 2 && excess > 0; pass++)
        for (Worker *w = s->workers; w && excess > 0; w = w->next)
            if ((pass == 0 && w->state == WK_IDLE) ||
                (pass == 1 && (w->state == WK_BUSY || w->state == WK_STARTING))) {
                worker_stop(w, "max_workers lowered");
                excess--;
            }
    stage_recount(s);
}
