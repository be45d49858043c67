/* worker.c: one worker's life as the daemon sees it: registered in the
 * database, forked and exec'ed, woken and stopped over its wake fd, given one
 * deadline timer at a time, reaped, and reported (worker_exited or
 * release_worker) before it is freed. */
#include "worker.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon.h"
#include "daemon_db.h"
#include "deaths.h"
#include "trends.h"
#include "spawn.h"
#include "stage.h"
#include "wake_rules.h"

extern char **environ;

const char *const worker_state_names[WK__COUNT] = {
    [WK_REGISTERING] = "registering", [WK_STARTING] = "starting", [WK_BUSY] = "busy",
    [WK_IDLE] = "idle",               [WK_STOPPING] = "stopping", [WK_EXITED] = "exited",
};
_Static_assert(sizeof worker_state_names / sizeof worker_state_names[0] == WK__COUNT, "names");

/* Which transitions make sense; anything else is a bug (fatal). */
static const bool transitions[WK__COUNT][WK__COUNT] = {
    [WK_REGISTERING] = {[WK_STARTING] = true, [WK_EXITED] = true},
    [WK_STARTING] = {[WK_BUSY] = true, [WK_IDLE] = true, [WK_STOPPING] = true, [WK_EXITED] = true},
    [WK_BUSY] = {[WK_IDLE] = true, [WK_STOPPING] = true, [WK_EXITED] = true},
    [WK_IDLE] = {[WK_BUSY] = true, [WK_STOPPING] = true, [WK_EXITED] = true},
    [WK_STOPPING] = {[WK_EXITED] = true},
    [WK_EXITED] = {false},
};

static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void wake_cb(evutil_socket_t fd, short what, void *arg);
static void out_cb(evutil_socket_t fd, short what, void *arg);
static void exec_cb(evutil_socket_t fd, short what, void *arg);

/* worker_label names a worker in logs: its id, or its stage while registering. */
const char *worker_label(const Worker *w)
{
    return w->id[0] ? w->id : w->stage->name;
}

/* worker_set_state is the only place a worker changes state: it keeps the
 * stage's per-state counts and refuses impossible transitions. */
void worker_set_state(Worker *w, WorkerState s)
{
    if (w->state == s)
        return;
    if (!transitions[w->state][s])
        fatal("worker %s: impossible transition %s -> %s", worker_label(w),
              worker_state_names[w->state], worker_state_names[s]);
    log_noise("%s[%d] %s -> %s", worker_label(w), (int)w->pid, worker_state_names[w->state],
              worker_state_names[s]);
    w->stage->count[w->state]--;
    w->stage->count[s]++;
    w->state = s;
    w->state_ms = mono_ms();
    trends_note(w->stage);
}

static void close_ev_fd(struct event *ev, int *fd)
{
    if (*fd < 0)
        return;
    event_del(ev);
    close(*fd);
    *fd = -1;
}

static void signal_group(Worker *w, int sig)
{
    if (w->pid > 0 && kill(-w->pid, sig) < 0 && errno == ESRCH)
        kill(w->pid, sig);
}

/* ---------------------------------------------------------------- database replies */

/* The end of the worker is recorded (persistent queries: a failure is retried
 * with backoff, so only a success arrives here). */
static void finished_cb(void *arg, PGresult *res)
{
    Worker *w = arg;
    Stage *s = w->stage;
    if (PQnfields(res) == 2 && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        int requeued = atoi(PQgetvalue(res, 0, 0)), dead = atoi(PQgetvalue(res, 0, 1));
        s->st.releases += (uint64_t)(requeued + dead);
        if (requeued + dead)
            wlog_info(w, "released %d lease(s): %d pending again, %d dead", requeued + dead,
                      requeued, dead);
        /* A crash whose task went dead was the task's fault, not the stage's. */
        bool counted = w->countable && dead == 0;
        if (!w->stop_by_us && !w->declared_dead)
            stage_crash_settled(s, counted, w->reason);
    }
    if (w->hung)
        maint_alert_dead(s->d->maint, w);
    worker_retire(w);
}

/* Keeps the last lines of a worker that did not end well in its row, for
 * the console's deaths (any host); best effort, no callback. On the
 * maintenance connection, queued before the release: on the main one it
 * ran beside the release, found the row locked by it and skipped. */
static void deaths_record(const Worker *w)
{
    char tail[TAIL_LINES * TAIL_LINE_MAX];
    if (tail_join(&w->outbuf.tail, "\n", tail, sizeof tail) == 0)
        return;
    const char *p[] = {w->id, tail};
    if (!db_query(w->stage->d->mdb, deaths_record_sql, 2, p, 0, NULL, NULL))
        wlog_warn(w, "out of memory recording its last lines (the console shows none)");
}

/* Releases go through the maintenance connection: one blocked by a row lock
 * (retried there) never holds up the wakes, spawns and recounts of the main one. */
static void queue_finish(Worker *w, bool exit_ok)
{
    Daemon *d = w->stage->d;
    if (!w->id[0]) {
        worker_retire(w);
        return;
    }
    char label[200];
    if (exit_ok) {
        const char *p[] = {w->id};
        snprintf(label, sizeof label, "record the exit of worker %s", w->id);
        if (db_query_persist(d->mdb, label, "SELECT NULL, NULL FROM pgwake.worker_exited($1)", 1, p,
                             finished_cb, w))
            return;
    } else if (w->hung) {
        deaths_record(w);
        /* Its session is gone with it: the verdict it was stopped for can be
         * recorded now, by expire_worker itself (heartbeat or task timeout,
         * whichever passed); release_worker (after it: LATERAL on its row)
         * takes back anything still held should the verdict not be due. */
        const char *p[] = {w->id, w->reason};
        snprintf(label, sizeof label, "record the verdict of worker %s", w->id);
        if (db_query_persist(d->mdb, label,
                             "SELECT r.requeued, r.dead FROM pgwake.expire_worker($1) e, LATERAL"
                             " (SELECT * FROM pgwake.release_worker($1, $2, false)"
                             "   WHERE e.dead IS NOT NULL) r", 2, p, finished_cb, w))
            return;
    } else {
        deaths_record(w);
        const char *p[] = {w->id, w->reason, w->stop_by_us ? "true" : "false"};
        snprintf(label, sizeof label, "release worker %s", w->id);
        if (db_query_persist(d->mdb, label,
                             "SELECT requeued, dead FROM pgwake.release_worker($1, $2, $3::boolean)",
                             3, p, finished_cb, w))
            return;
    }
    wlog_warn(w, "out of memory queueing its release");
    worker_retire(w);
}

/* ---------------------------------------------------------------- spawning */

static char *fmt_seconds(char *buf, size_t n, int64_t ms)
{
    if (ms % 1000)
        snprintf(buf, n, "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
    else
        snprintf(buf, n, "%lld", (long long)(ms / 1000));
    return buf;
}

static char **worker_env(const Worker *w, const SpawnUser *user)
{
    const Stage *s = w->stage;
    const Daemon *d = s->d;
    char lease[32], hb[32];
    char *extra[11];
    size_t n = 0;
    /* A worker run as another user gets that user's identity, as login would. */
    if (user && user->home && asprintf(&extra[n], "HOME=%s", user->home) > 0) n++;
    if (user && asprintf(&extra[n], "USER=%s", s->conf->user) > 0) n++;
    if (user && asprintf(&extra[n], "LOGNAME=%s", s->conf->user) > 0) n++;
    if (asprintf(&extra[n], "PGWAKE_STAGE=%s", s->name) > 0) n++;
    if (asprintf(&extra[n], "PGWAKE_WORKER_ID=%s", w->id) > 0) n++;
    if (asprintf(&extra[n], "PGWAKE_WAKE_FD=3") > 0) n++;
    if (asprintf(&extra[n], "PGWAKE_DSN=%s", d->worker_dsn) > 0) n++;
    if (asprintf(&extra[n], "PGWAKE_LEASE_SECONDS=%s", fmt_seconds(lease, sizeof lease, s->conf->lease_ms)) > 0) n++;
    if (asprintf(&extra[n], "PGWAKE_HEARTBEAT_INTERVAL=%s",
                 fmt_seconds(hb, sizeof hb, s->conf->heartbeat_interval_ms)) > 0) n++;
    if (asprintf(&extra[n], "PGWAKE_CLAIM_BATCH=%d", s->conf->claim_batch) > 0) n++;
    extra[n] = NULL;
    /* Secrets of the daemon stay with the daemon; systemd's sockets too. */
    char *drop[] = {"SMTP_PASSWORD", "PGWAKE_CONTROL_TOKEN", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                    "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", NULL};
    char **env = spawn_build_env(environ, d->cfg->env_file_vars, s->conf->environment, extra, drop,
                                 d->cfg->worker_dsn != NULL);
    for (size_t i = 0; i < n; i++)
        free(extra[i]);
    return env;
}

/* ours: the daemon itself ran out of fds or processes (spawn_errno_ours):
 * backed off like a crash, never counted toward FATAL. */
static void spawn_failed(Worker *w, const char *reason, bool ours)
{
    snprintf(w->reason, sizeof w->reason, "%s", reason);
    w->exec_failed = true;
    w->countable = !ours && daemon_db_settled(w->stage->d, w->stage->conf->heartbeat_timeout_ms);
    log_error("%s: unable to start a worker: %s%s", w->stage->name, reason,
              ours ? " (the daemon's own shortage: not counted as a crash)" : "");
    worker_set_state(w, WK_EXITED);
    stage_worker_gone(w->stage, w, true, false);
    queue_finish(w, false);
}

static void add_read_ev(Worker *w, struct event *ev, int fd, event_callback_fn cb)
{
    event_assign(ev, w->stage->d->base, fd, EV_READ | EV_PERSIST, cb, w);
    if (event_add(ev, NULL))
        fatal("event_add failed for a worker fd");
}

/* One pipe takes both stdout and stderr, so a worker's lines keep their order. */
static bool make_pipes(int wake[2], int out[2])
{
    wake[0] = wake[1] = out[0] = out[1] = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, wake) < 0 || pipe2(out, O_CLOEXEC) < 0)
        return false;
    fcntl(wake[0], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    return true;
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
}

/* The PATH the worker will see: its environment's, else the daemon's. */
static const char *worker_path(const Stage *s)
{
    const char *path = getenv("PATH");
    char **const lists[] = {s->d->cfg->env_file_vars, s->conf->environment};
    for (size_t l = 0; l < 2; l++)
        for (char **e = lists[l]; e && *e; e++)
            if (strncmp(*e, "PATH=", 5) == 0)
                path = *e + 5;
    return path;
}

/* What a spawn needs, made ready in the parent: users are looked up here,
 * since only async-signal-safe calls may run between fork and exec. */
typedef struct SpawnPrep {
    char *path;               /* the command, resolved against the worker's PATH */
    SpawnUser user;
    int wake[2], out[2];      /* [0] the daemon's ends, [1] the child's */
    char **env;
} SpawnPrep;

/* Gets w's spawn ready; on failure err says why and *ours whether it is the
 * daemon's own shortage. */
static bool prepare_spawn(Worker *w, SpawnPrep *p, char *err, size_t n, bool *ours)
{
    const StageConf *c = w->stage->conf;
    *ours = false;
    *p = (SpawnPrep){.path = NULL};
    p->path = spawn_resolve_path(c->argv[0], c->directory, worker_path(w->stage), err, n);
    if (!p->path)
        return false;
    if (c->user && !spawn_lookup_user(c->user, &p->user, err, n)) {
        int e = errno;
        free(p->path);
        *ours = spawn_errno_ours(e);
        return false;
    }
    if (!make_pipes(p->wake, p->out)) {
        int e = errno;
        snprintf(err, n, "unable to create pipes: %s", strerror(e));
        close_pair(p->wake), close_pair(p->out);
        free(p->path);
        spawn_user_free(&p->user);
        *ours = spawn_errno_ours(e);
        return false;
    }
    p->env = worker_env(w, c->user ? &p->user : NULL);
    return true;
}

/* The child has its copies (or there is no child): the parent keeps only
 * its own ends of the pipes. */
static void prep_done(SpawnPrep *p)
{
    spawn_env_free(p->env);
    free(p->path);
    spawn_user_free(&p->user);
    close(p->wake[1]), close(p->out[1]);
}

/* The forked child becomes w: its fds watched, starting for at most
 * STARTING_GRACE_MS, and its pid recorded for a later daemon's clean-up. */
static void adopt_child(Worker *w, pid_t pid, int wake_fd, int out_fd, int exec_fd)
{
    Stage *s = w->stage;
    const StageConf *c = s->conf;
    w->pid = pid;
    w->wake_fd = wake_fd;
    w->out_fd = out_fd;
    w->exec_fd = exec_fd;
    w->spawned_ms = mono_ms();
    w->gen = s->wr.gen;
    w->conf_gen = s->conf_gen;
    add_read_ev(w, &w->wake_ev, w->wake_fd, wake_cb);
    add_read_ev(w, &w->out_ev, w->out_fd, out_cb);
    add_read_ev(w, &w->exec_ev, w->exec_fd, exec_cb);
    worker_set_state(w, WK_STARTING);
    timer_arm_ms(&w->timer, STARTING_GRACE_MS);
    s->st.spawns++;
    maint_worker_started(s->d->maint, w);
    if (c->memory_limit)
        memwatch_kick(s->d->memwatch);
    stage_roll(s); /* a replacement is running: a rolling restart may go on */
    wlog_info(w, "started: %s", c->command);

    char spid[16], sstart[24];
    snprintf(spid, sizeof spid, "%d", (int)pid);
    snprintf(sstart, sizeof sstart, "%lld", spawn_proc_start_time(pid));
    const char *p[] = {w->id, spid, sstart};
    char label[160];
    snprintf(label, sizeof label, "record the pid of worker %s", w->id);
    if (!db_query_persist(s->d->db, label, "SELECT pgwake.set_worker_pid($1, $2::int, $3::bigint)",
                          3, p, NULL, NULL))
        wlog_warn(w, "out of memory recording its pid");
}

/* Forks and execs a registered worker; a failure at any step backs off like a crash. */
static void worker_exec(Worker *w)
{
    const StageConf *c = w->stage->conf;
    char err[ERR_LEN];
    bool ours;
    SpawnPrep p;
    if (!prepare_spawn(w, &p, err, sizeof err, &ours)) {
        spawn_failed(w, err, ours);
        return;
    }
    SpawnReq req = {.path = p.path, .argv = c->argv, .envp = p.env, .directory = c->directory,
                    .user = c->user ? &p.user : NULL, .wake_fd = p.wake[1], .out_fd = p.out[1],
                    .err_fd = p.out[1]};
    int exec_fd = -1;
    pid_t pid = spawn_start(&req, &exec_fd, err, sizeof err);
    int e = errno;
    prep_done(&p);
    if (pid < 0) {
        close(p.wake[0]), close(p.out[0]);
        spawn_failed(w, err, spawn_errno_ours(e));
        return;
    }
    adopt_child(w, pid, p.wake[0], p.out[0], exec_fd);
}

static void register_cb(void *arg, PGresult *res)
{
    Worker *w = arg;
    Stage *s = w->stage;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (res) {
            log_error("%s: unable to register a worker: %s (retrying in %lld ms)", s->name,
                      PQresultErrorMessage(res), (long long)s->conf->restart_delay_ms);
            stage_capped(s); /* e.g. a read-only standby: no registration storm */
        }
        worker_set_state(w, WK_EXITED);
        stage_worker_gone(s, w, false, false);
        worker_retire(w);
        return;
    }
    if (PQgetisnull(res, 0, 0)) {
        log_info("%s: max_workers_total (%d) reached across daemons; retrying in %lld ms", s->name,
                 s->conf->max_workers_total, (long long)s->conf->restart_delay_ms);
        stage_capped(s);
        worker_set_state(w, WK_EXITED);
        stage_worker_gone(s, w, false, false);
        worker_retire(w);
        return;
    }
    snprintf(w->id, sizeof w->id, "%s", PQgetvalue(res, 0, 0));
    if (w->cancelled || s->d->stopping || !stage_runnable(s)) {
        worker_set_state(w, WK_EXITED);
        stage_worker_gone(s, w, false, true);
        queue_finish(w, true);
        return;
    }
    worker_exec(w);
}

/* worker_create registers a new worker for stage s; the process is forked once
 * the database has given it an id (and, with max_workers_total, a place). */
Worker *worker_create(Stage *s)
{
    Worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->stage = s;
    w->wake_fd = w->out_fd = w->exec_fd = -1;
    w->state = WK_REGISTERING;
    w->state_ms = mono_ms();
    evtimer_assign(&w->timer, s->d->base, timer_cb, w);
    char hb[32], total[16], tt[32];
    snprintf(hb, sizeof hb, "%lld milliseconds", (long long)s->conf->heartbeat_timeout_ms);
    snprintf(total, sizeof total, "%d", s->conf->max_workers_total);
    snprintf(tt, sizeof tt, "%lld milliseconds", (long long)s->conf->task_timeout_ms);
    const char *p[] = {s->name, s->d->cfg->host, hb, s->conf->max_workers_total ? total : NULL, tt};
    /* Counted before anything else runs: the next hint must see it starting. */
    s->count[WK_REGISTERING]++;
    w->next = s->workers;
    s->workers = w;
    if (!db_query(s->d->db,
                  "SELECT pgwake.set_task_timeout(pgwake.register_worker($1, $2, NULL,"
                  " $3::interval, $4::int), $5::interval)", 5, p, 0,
                  register_cb, w)) {
        s->workers = w->next;
        s->count[WK_REGISTERING]--;
        free(w);
        return NULL;
    }
    return w;
}

/* ---------------------------------------------------------------- wake protocol */

static bool send_byte(Worker *w, char c)
{
    if (w->wake_fd < 0)
        return false;
    return send(w->wake_fd, &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1;
}

/* worker_wake sends W to an idle worker and marks it busy. */
bool worker_wake(Worker *w)
{
    if (w->state != WK_IDLE || !send_byte(w, 'W'))
        return false;
    event_del(&w->timer);
    w->gen = w->stage->wr.gen;
    worker_set_state(w, WK_BUSY);
    stage_woke(w->stage);
    return true;
}

/* The worker's last claim, begun after its last W, found nothing. */
static void on_idle_report(Worker *w)
{
    Stage *s = w->stage;
    if (w->state != WK_STARTING && w->state != WK_BUSY && w->state != WK_IDLE)
        return;
    WakeDecision dec = stage_decide(s, &(WakeEvent){.kind = WR_IDLE_REPORT, .worker_gen = w->gen});
    if (dec.wake && send_byte(w, 'W')) {
        w->gen = s->wr.gen;
        worker_set_state(w, WK_BUSY);
        stage_woke(s);
        return;
    }
    worker_set_state(w, WK_IDLE);
    timer_arm_ms(&w->timer, s->conf->idle_timeout_ms);
    stage_roll(s);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    Worker *w = arg;
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        close_ev_fd(&w->wake_ev, &w->wake_fd);
        return;
    }
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == 'I')
            on_idle_report(w);
}

static void read_output(Worker *w, int *fd, struct event *ev, LineBuf *lb)
{
    char buf[4096];
    for (int rounds = 0; rounds < 16 && *fd >= 0; rounds++) {
        ssize_t n = read(*fd, buf, sizeof buf);
        if (n > 0) {
            outlog_feed(w->stage->log, lb, w->id, buf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        outlog_flush(w->stage->log, lb, w->id);
        close_ev_fd(ev, fd);
    }
}

static void out_cb(evutil_socket_t fd, short what, void *arg)
{
    Worker *w = arg;
    read_output(w, &w->out_fd, &w->out_ev, &w->outbuf);
}

static void check_exec(Worker *w)
{
    char reason[sizeof w->reason];
    int st = spawn_exec_status(w->exec_fd, reason, sizeof reason);
    if (st == 0)
        return;
    if (st < 0) {
        w->exec_failed = true;
        w->spawn_short = st == SPAWN_EXEC_SHORT;
        snprintf(w->reason, sizeof w->reason, "%s", reason);
        wlog_warn(w, "%s", reason);
    }
    close_ev_fd(&w->exec_ev, &w->exec_fd);
}

static void exec_cb(evutil_socket_t fd, short what, void *arg)
{
    check_exec(arg);
}

/* ---------------------------------------------------------------- stopping */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    Worker *w = arg;
    const StageConf *c = w->stage->conf;
    if (w->state == WK_STARTING) {
        wlog_debug(w, "no I within %d ms of its start: counted busy", STARTING_GRACE_MS);
        worker_set_state(w, WK_BUSY);
        stage_hint(w->stage, false); /* what it was left may be more than it took */
        return;
    }
    if (w->state == WK_IDLE) {
        if (stage_decide(w->stage, &(WakeEvent){.kind = WR_IDLE_END}).stop)
            worker_stop(w, "idle timeout");
        return;
    }
    if (w->state != WK_STOPPING)
        return;
    if (!w->term_sent) {
        wlog_info(w, "still running %lld ms after S: SIGTERM", (long long)c->stop_timeout_ms);
        signal_group(w, SIGTERM);
        signal_group(w, SIGCONT);
        w->term_sent = true;
        timer_arm_ms(&w->timer, c->kill_timeout_ms);
    } else {
        wlog_warn(w, "still running %lld ms after SIGTERM: SIGKILL", (long long)c->kill_timeout_ms);
        signal_group(w, SIGKILL);
    }
}

/* worker_stop asks a worker to stop after its current task (S), with SIGTERM
 * after stop_timeout and SIGKILL after kill_timeout; pgwake's own stops are
 * refunded and never count as crashes. */
void worker_stop(Worker *w, const char *why)
{
    switch (w->state) {
    case WK_REGISTERING:
        w->cancelled = true;
        return;
    case WK_STARTING:
    case WK_BUSY:
    case WK_IDLE:
        wlog_info(w, "stopping (%s)", why);
        w->stop_by_us = true;
        event_del(&w->timer);
        worker_set_state(w, WK_STOPPING);
        if (!send_byte(w, 'S'))
            w->term_sent = false;
        timer_arm_ms(&w->timer, w->stage->conf->stop_timeout_ms);
        return;
    default:
        return;
    }
}

/* worker_kill_now skips the graceful part (a second SIGTERM to the daemon). */
void worker_kill_now(Worker *w)
{
    if (w->state == WK_REGISTERING) {
        w->cancelled = true;
        return;
    }
    if (w->state == WK_EXITED || w->pid <= 0)
        return;
    w->stop_by_us = true;
    if (w->state != WK_STOPPING)
        worker_set_state(w, WK_STOPPING);
    signal_group(w, SIGKILL);
}

static void terminate(Worker *w)
{
    if (w->state != WK_STOPPING)
        worker_set_state(w, WK_STOPPING);
    event_del(&w->timer);
    signal_group(w, SIGTERM);
    signal_group(w, SIGCONT);
    w->term_sent = true;
    timer_arm_ms(&w->timer, w->stage->conf->kill_timeout_ms);
}

/* worker_declared: a fresh read of the database says this worker is dead or
 * exited (hung, or declared by another daemon or pg_cron); its leases are
 * already others', so it is terminated without waiting for its task. */
void worker_declared(Worker *w, const char *why)
{
    if (w->state == WK_EXITED || w->state == WK_REGISTERING || w->declared_dead)
        return;
    wlog_warn(w, "declared dead in the database (%s): terminating it", why);
    w->declared_dead = true;
    snprintf(w->reason, sizeof w->reason, "declared dead");
    terminate(w);
}

/* worker_declared_dead is worker_declared for a verdict of our own query. */
void worker_declared_dead(Worker *w)
{
    worker_declared(w, "heartbeat verdict");
}

/* worker_hung: a fresh read says the worker is past its heartbeat deadline,
 * but the verdict's statement waits on a lock (a worker stopped inside its
 * own transaction holds its task row: the release would wait for the worker,
 * the worker for the release). The daemon knows its own child: it stops it
 * now; its session ends with it, and after the reap expire_worker records the
 * verdict (its reason, the attempt counted; alerted). */
void worker_hung(Worker *w)
{
    if (w->state == WK_EXITED || w->state == WK_REGISTERING || w->declared_dead)
        return;
    wlog_warn(w, "past its heartbeat or task_timeout deadline and its rows are locked: "
                 "terminating it now, the verdict follows its exit");
    w->declared_dead = w->hung = true;
    snprintf(w->reason, sizeof w->reason, "heartbeat timeout");
    terminate(w);
}

/* ---------------------------------------------------------------- reaping */

/* worker_reaped handles the exit of a worker's process: output drained, its
 * group killed (descendants included), the database told, the stage told. */
void worker_reaped(Worker *w, int status)
{
    Stage *s = w->stage;
    if (w->exec_fd >= 0)
        check_exec(w);
    read_output(w, &w->out_fd, &w->out_ev, &w->outbuf);
    outlog_flush(s->log, &w->outbuf, w->id);
    close_ev_fd(&w->out_ev, &w->out_fd);
    close_ev_fd(&w->wake_ev, &w->wake_fd);
    close_ev_fd(&w->exec_ev, &w->exec_fd);
    event_del(&w->timer);
    /* Its group was killed before the reap (spawn_reap), while its pid could
     * not yet be someone else's. */

    bool exit_ok = !w->exec_failed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!w->exec_failed && !w->declared_dead) {
        if (WIFEXITED(status))
            snprintf(w->reason, sizeof w->reason, "exit %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            snprintf(w->reason, sizeof w->reason, "signal %d", WTERMSIG(status));
    }
    bool crashed = !exit_ok && !w->stop_by_us && !w->declared_dead;
    /* Crashes while the database is away (or just back) say nothing about the stage. */
    w->countable = crashed && !w->spawn_short && daemon_db_settled(s->d, s->conf->heartbeat_timeout_ms);
    if (crashed)
        wlog_warn(w, "crashed: %s after %lld ms%s", w->reason, (long long)(mono_ms() - w->spawned_ms),
                  w->spawn_short ? " (the daemon's own shortage: not counted)" : "");
    else
        wlog_info(w, "exited: %s", exit_ok ? "exit 0" : w->reason);
    s->st.exits++;
    worker_set_state(w, WK_EXITED);
    stage_worker_gone(s, w, crashed, exit_ok);
    queue_finish(w, exit_ok);
}

/* worker_retire unlinks a finished worker from its stage and releases
 * everything it owns; its memory waits on the daemon's dead list for the
 * after-loop hook, since a caller up the stack may still hold it. */
void worker_retire(Worker *w)
{
    Stage *s = w->stage;
    for (Worker **pp = &s->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    s->count[w->state]--;
    close_ev_fd(&w->out_ev, &w->out_fd);
    close_ev_fd(&w->wake_ev, &w->wake_fd);
    close_ev_fd(&w->exec_ev, &w->exec_fd);
    event_del(&w->timer);
    db_cancel_arg(s->d->db, w);
    db_cancel_arg(s->d->mdb, w);
    w->next = s->d->dead_workers;
    s->d->dead_workers = w;
    daemon_maybe_finish(s->d);
}

/* worker_free_dead frees the workers retired since the last call. */
void worker_free_dead(Worker **dead)
{
    while (*dead) {
        Worker *w = *dead;
        *dead = w->next;
        free(w);
    }
}
