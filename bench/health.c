/*
 * bench/health.c - health benchmarks of pgwake: how soon the lease of a
 * crashed or hung worker is released, and what heartbeating workers cost the
 * daemon. One program, one mode per role (bench/health.sh drives them).
 *
 *   health worker
 *       A stage's command, run by the daemon (worker library, wake fd). Claims
 *       tasks and holds each one, heartbeating from the library's thread, for
 *       the payload's "hold_ms" (default: until told to stop), then completes
 *       it. With nothing to claim it waits idle (the local-workers CPU test).
 *       Exit 0 when told to stop, 3 when fenced (declared dead).
 *
 *   health kill -s STAGE -n N [-k WARMUP] [-o SAMPLES] [-d DSN]
 *       Crash to release. Enqueues one task (max_attempts huge) whose worker
 *       holds it; N + WARMUP times: waits until a new worker leases it (the
 *       row, polled every 1 ms), lets it settle 20-80 ms, then SIGKILLs the
 *       worker's pid (pgwake.workers.pid) and measures, from the kill, the
 *       arrival of the NOTIFY pgwake_task that release_worker sends in the
 *       transaction returning the task to pending (a LISTENing libpq
 *       connection, blocked in poll(2)). The row is then checked: pending or
 *       leased by someone else, worker dead with reason "signal 9". Also
 *       measured: kill -> the task leased again by the restarted worker
 *       (depends on restart_delay and the start-up of a worker).
 *
 *   health hang -s STAGE -n N [-k WARMUP] [-o SAMPLES] [-d DSN]
 *       Missed heartbeat to release. Same task; N + WARMUP times: once a new
 *       worker holds it, waits a random 0.2-1.2 s (so the stop falls anywhere
 *       in the heartbeat period), SIGSTOPs the worker, waits for the release
 *       notification, then reads the worker's row: deadline = last_heartbeat
 *       + heartbeat_timeout (database time, after the fact). Measured:
 *       deadline -> notification received (client CLOCK_REALTIME, same
 *       machine), deadline -> ended_at (now() of the daemon's releasing
 *       transaction), SIGSTOP -> release, and release -> the stopped process
 *       gone (the daemon's SIGTERM+SIGCONT, then SIGKILL after kill_timeout).
 *
 *   health remote -n N [-c CONNS] [-i INTERVAL_MS] [-T TIMEOUT_S] [-t SECONDS] [-d DSN]
 *       N remote workers: registers them with pgwake.register_worker (stage
 *       "remote", host "bench-remote", heartbeat_timeout TIMEOUT_S), then
 *       heartbeats each every INTERVAL_MS (spread evenly over the interval)
 *       from CONNS connections (one thread each) for SECONDS, then ends them
 *       with worker_exited. Prints "registered N" on stdout once the first
 *       round of heartbeats is done, and at the end how many heartbeats were
 *       sent, how many were late by more than 100 ms, and their round trip.
 *
 * DSN: -d, else libpq's environment. Machine-readable lines on stdout:
 *   RESULT bench=NAME n=... p50_us=... p90_us=... p99_us=... max_us=... ...
 * with -o, the main figure's samples in milliseconds, one per line. Times are
 * printed, never asserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "benchlib.h"
#include "pgwake/worker.h"

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(long long)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double urand(void) { return (double)rand() / RAND_MAX; }

/* ---------------------------------------------------------------- statistics */

/* ---------------------------------------------------------------- options */

struct opts {
    const char *dsn, *stage, *out;
    int n, warmup, conns;
    double interval_ms, timeout_s, seconds;
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->dsn = "";
    o->stage = "health";
    o->n = 200;
    o->warmup = 3;
    o->conns = 4;
    o->interval_ms = 1000;
    o->timeout_s = 3;
    o->seconds = 60;
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "d:s:o:n:k:c:i:T:t:")) != -1) {
        switch (c) {
        case 'd': o->dsn = optarg; break;
        case 's': o->stage = optarg; break;
        case 'o': o->out = optarg; break;
        case 'n': o->n = atoi(optarg); break;
        case 'k': o->warmup = atoi(optarg); break;
        case 'c': o->conns = atoi(optarg); break;
        case 'i': o->interval_ms = atof(optarg); break;
        case 'T': o->timeout_s = atof(optarg); break;
        case 't': o->seconds = atof(optarg); break;
        default: die("bad option (see the comment at the top of bench/health.c)");
        }
    }
    if (o->n <= 0 || o->conns <= 0 || o->warmup < 0 || o->interval_ms <= 0)
        die("-n, -c, -i must be > 0 and -k >= 0");
}

static PGconn *connect_db(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die("unable to connect: %s", PQerrorMessage(c));
    return c;
}

/* q1 runs a query with text parameters; dies unless it returns tuples. */
static PGresult *q1(PGconn *c, const char *sql, int np, const char *const *p)
{
    PGresult *r = PQexecParams(c, sql, np, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("%s: %s", sql, PQerrorMessage(c));
    return r;
}

/* ---------------------------------------------------------------- worker */

static pgwake_worker *g_worker;

static void on_term(int sig)
{
    (void)sig;
    if (g_worker)
        pgwake_request_stop(g_worker);
}

static long long hold_ms_of(const char *payload)
{
    const char *p = strstr(payload, "\"hold_ms\"");
    if (!p || !(p = strchr(p, ':')))
        return -1;
    return strtoll(p + 1, NULL, 10);
}

static int mode_worker(void)
{
    char err[256];
    g_worker = pgwake_open(NULL, err, sizeof err);
    if (!g_worker)
        die("worker: %s", err);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pgwake_worker *w = g_worker;
    int rc = 0;
    for (;;) {
        if (pgwake_fenced(w)) {
            rc = 3;
            break;
        }
        if (pgwake_should_stop(w))
            break;
        pgwake_task *t = NULL;
        int n = pgwake_claim(w, &t);
        if (n == PGWAKE_STOPPED)
            continue;
        if (n < 0) {
            fprintf(stderr, "health worker: claim: %s\n", pgwake_last_error(w));
            rc = 1;
            break;
        }
        if (n == 0) {
            if (pgwake_wait_idle(w) == PGWAKE_WAKE_STOP) {
                rc = pgwake_fenced(w) ? 3 : 0;
                break;
            }
            continue;
        }
        /* Hold the task: sleep in 10 ms steps, heartbeats go on in their thread. */
        long long hold = hold_ms_of(t->payload);
        int64_t until = hold < 0 ? INT64_MAX : mono_ns() + hold * 1000000LL;
        while (mono_ns() < until && !pgwake_fenced(w)) {
            sleep_ms(10);
            if (pgwake_poll_wake(w))
                break;
        }
        if (pgwake_fenced(w)) {
            pgwake_task_free(t);
            rc = 3;
            break;
        }
        if (mono_ns() >= until && pgwake_complete(w, t, NULL) == PGWAKE_ERROR)
            fprintf(stderr, "health worker: complete: %s\n", pgwake_last_error(w));
        /* Told to stop mid-task: exit 0 holding it; worker_exited releases it. */
        pgwake_task_free(t);
    }
    pgwake_close(w);
    return rc;
}

/* ---------------------------------------------------------------- kill / hang */

/* A pgwake_task listener: a connection of its own, blocked in poll(2). */
static void drain_notifies(PGconn *l)
{
    PQconsumeInput(l);
    PGnotify *nt;
    while ((nt = PQnotifies(l)) != NULL)
        PQfreemem(nt);
}

/* wait_notify returns CLOCK_REALTIME when a pgwake_task notification naming
 * stage was read, or 0 after timeout_ms. */
static int64_t wait_notify(PGconn *l, const char *stage, int timeout_ms)
{
    int sock = PQsocket(l);
    int64_t end = mono_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int left = (int)((end - mono_ns()) / 1000000);
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = sock, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        int64_t t = now_ns();
        if (!PQconsumeInput(l))
            die("listener: %s", PQerrorMessage(l));
        PGnotify *nt;
        bool hit = false;
        while ((nt = PQnotifies(l)) != NULL) {
            if (strcmp(nt->relname, "pgwake_task") == 0 && strcmp(nt->extra, stage) == 0)
                hit = true;
            PQfreemem(nt);
        }
        if (hit)
            return t;
    }
}

/* wait_leased waits (polling the row every 1 ms) until the task is leased by
 * a live worker other than prev whose pid is known; fills owner and pid and
 * returns CLOCK_REALTIME when it saw that, or 0 after timeout_s. */
static int64_t wait_leased(PGconn *c, const char *task, const char *prev, char *owner, size_t olen,
                           int *pid, double timeout_s)
{
    const char *p[] = {task, prev};
    int64_t end = mono_ns() + (int64_t)(timeout_s * 1e9);
    while (mono_ns() < end) {
        PGresult *r = q1(c,
                         "SELECT t.lease_owner, w.pid FROM pgwake.tasks t JOIN pgwake.workers w"
                         " ON w.id = t.lease_owner WHERE t.id = $1 AND t.status = 'leased'"
                         " AND t.lease_owner IS DISTINCT FROM $2 AND w.pid IS NOT NULL"
                         " AND w.state IN ('starting', 'alive')",
                         2, p);
        if (PQntuples(r) == 1) {
            int64_t t = now_ns();
            snprintf(owner, olen, "%s", PQgetvalue(r, 0, 0));
            *pid = atoi(PQgetvalue(r, 0, 1));
            PQclear(r);
            return t;
        }
        PQclear(r);
        sleep_ms(1);
    }
    return 0;
}

/* proc_gone: pid no longer exists or is a zombie (only its reaping is left). */
static bool proc_gone(int pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return true;
    buf[n] = '\0';
    const char *e = strrchr(buf, ')');
    return e && e[1] == ' ' && (e[2] == 'Z' || e[2] == 'X');
}

static char *setup_task(PGconn *c, const char *stage)
{
    const char *p[] = {stage};
    PQclear(q1(c, "DELETE FROM pgwake.tasks WHERE stage = $1 RETURNING 1", 1, p));
    PGresult *r = q1(c, "SELECT pgwake.enqueue($1, '{}', NULL, 0, now(), 2000000000)::text", 1, p);
    char *id = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return id;
}

static int mode_kill(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    PGconn *c = connect_db(o.dsn), *l = connect_db(o.dsn);
    exec_ok(l, "LISTEN pgwake_task");
    srand((unsigned)getpid());
    char *task = setup_task(c, o.stage);
    int total = o.warmup + o.n;
    int64_t *rel = calloc((size_t)total, sizeof *rel), *again = calloc((size_t)total, sizeof *again);
    if (!rel || !again)
        die("out of memory");
    size_t nrel = 0, nagain = 0;
    int missed = 0, bad_row = 0;
    char owner[128] = "", prev[128] = "";
    int pid = 0;
    int64_t killed_at = 0;
    for (int i = 0; i <= total; i++) {
        int64_t leased = wait_leased(c, task, prev, owner, sizeof owner, &pid, 30);
        if (!leased)
            die("kill: no worker leased task %s within 30 s (after %d kills)", task, i);
        if (killed_at && i > o.warmup)
            again[nagain++] = leased - killed_at;
        if (i == total)
            break;
        sleep_ms(20 + 60 * urand());
        drain_notifies(l);
        killed_at = now_ns();
        if (kill(pid, SIGKILL) < 0)
            die("kill %d: %s", pid, strerror(errno));
        int64_t t = wait_notify(l, o.stage, 10000);
        if (!t) {
            fprintf(stderr, "health kill: no release notification within 10 s (worker %s pid %d)\n", owner, pid);
            missed++;
        } else if (i >= o.warmup) {
            rel[nrel++] = t - killed_at;
        }
        const char *p[] = {task, owner};
        PGresult *r = q1(c,
                         "SELECT (t.status = 'pending' OR (t.status = 'leased' AND t.lease_owner <> $2))"
                         " AND w.state = 'dead' AND w.reason = 'signal 9'"
                         " FROM pgwake.tasks t, pgwake.workers w WHERE t.id = $1 AND w.id = $2",
                         2, p);
        if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "t") != 0)
            bad_row++;
        PQclear(r);
        snprintf(prev, sizeof prev, "%s", owner);
    }
    char extra[128];
    snprintf(extra, sizeof extra, "missed=%d bad_row=%d", missed, bad_row);
    report("kill_release", extra, rel, nrel, o.out);
    report("kill_released_again", NULL, again, nagain, NULL);
    PQfinish(c);
    PQfinish(l);
    return missed || bad_row ? 3 : 0;
}

static int mode_hang(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    PGconn *c = connect_db(o.dsn), *l = connect_db(o.dsn);
    exec_ok(l, "LISTEN pgwake_task");
    srand((unsigned)getpid());
    char *task = setup_task(c, o.stage);
    int total = o.warmup + o.n;
    int64_t *dl_notify = calloc((size_t)total, sizeof(int64_t));
    int64_t *dl_ended = calloc((size_t)total, sizeof(int64_t));
    int64_t *stop_rel = calloc((size_t)total, sizeof(int64_t));
    int64_t *rel_gone = calloc((size_t)total, sizeof(int64_t));
    if (!dl_notify || !dl_ended || !stop_rel || !rel_gone)
        die("out of memory");
    size_t n = 0, ngone = 0;
    int missed = 0, bad_row = 0, not_gone = 0;
    char owner[128] = "", prev[128] = "";
    int pid = 0;
    for (int i = 0; i < total; i++) {
        if (!wait_leased(c, task, prev, owner, sizeof owner, &pid, 60))
            die("hang: no worker leased task %s within 60 s (after %d hangs)", task, i);
        sleep_ms(200 + 1000 * urand());
        drain_notifies(l);
        int64_t stopped = now_ns();
        if (kill(pid, SIGSTOP) < 0)
            die("kill -STOP %d: %s", pid, strerror(errno));
        int64_t t = wait_notify(l, o.stage, (int)(o.timeout_s * 1000) + 30000);
        if (!t) {
            fprintf(stderr, "health hang: no release within the timeout (worker %s pid %d)\n", owner, pid);
            missed++;
            kill(pid, SIGKILL);
            snprintf(prev, sizeof prev, "%s", owner);
            continue;
        }
        const char *p[] = {owner};
        PGresult *r = q1(c,
                         "SELECT (extract(epoch FROM GREATEST(COALESCE(last_heartbeat, started_at),"
                         " pg_postmaster_start_time()) + heartbeat_timeout) * 1e9)::int8,"
                         " (extract(epoch FROM ended_at) * 1e9)::int8, state, reason"
                         " FROM pgwake.workers WHERE id = $1",
                         1, p);
        if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0) || PQgetisnull(r, 0, 1) ||
            strcmp(PQgetvalue(r, 0, 2), "dead") != 0 || strcmp(PQgetvalue(r, 0, 3), "heartbeat timeout") != 0) {
            fprintf(stderr, "health hang: worker %s: unexpected row (%s, %s)\n", owner,
                    PQntuples(r) ? PQgetvalue(r, 0, 2) : "?", PQntuples(r) ? PQgetvalue(r, 0, 3) : "?");
            bad_row++;
        } else if (i >= o.warmup) {
            int64_t deadline = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            dl_notify[n] = t - deadline;
            dl_ended[n] = strtoll(PQgetvalue(r, 0, 1), NULL, 10) - deadline;
            stop_rel[n++] = t - stopped;
        }
        PQclear(r);
        /* The daemon ends the stopped worker: SIGTERM+SIGCONT, SIGKILL after kill_timeout. */
        int64_t end = mono_ns() + 20000000000LL;
        while (!proc_gone(pid) && mono_ns() < end)
            sleep_ms(2);
        if (proc_gone(pid)) {
            if (i >= o.warmup)
                rel_gone[ngone++] = now_ns() - t;
        } else {
            fprintf(stderr, "health hang: stopped worker pid %d still there 20 s after its release\n", pid);
            not_gone++;
            kill(pid, SIGKILL);
        }
        snprintf(prev, sizeof prev, "%s", owner);
    }
    char extra[128];
    snprintf(extra, sizeof extra, "missed=%d bad_row=%d not_gone=%d", missed, bad_row, not_gone);
    report("hang_deadline_to_notify", extra, dl_notify, n, o.out);
    report("hang_deadline_to_ended_at", NULL, dl_ended, n, NULL);
    report("hang_stop_to_release", NULL, stop_rel, n, NULL);
    report("hang_release_to_gone", NULL, rel_gone, ngone, NULL);
    PQfinish(c);
    PQfinish(l);
    return missed || bad_row || not_gone ? 3 : 0;
}

/* ---------------------------------------------------------------- remote */

struct hb_thread {
    const char *dsn;
    char **ids;
    int n, first, step; /* this thread's workers: first, first + step, ... < n */
    double interval_ms;
    int64_t start, end; /* CLOCK_MONOTONIC */
    long sent, late, errors;
    int64_t *rtt;
    size_t nrtt, cap;
};

static void *hb_main(void *arg)
{
    struct hb_thread *h = arg;
    PGconn *c = connect_db(h->dsn);
    PGresult *r = PQprepare(c, "hb", "SELECT pgwake.heartbeat($1)", 1, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare: %s", PQerrorMessage(c));
    PQclear(r);
    int64_t iv = (int64_t)(h->interval_ms * 1e6);
    for (int64_t round = 0;; round++) {
        for (int k = h->first; k < h->n; k += h->step) {
            int64_t due = h->start + round * iv + iv * k / h->n;
            if (due >= h->end)
                goto out;
            sleep_until_mono(due);
            int64_t t0 = mono_ns();
            if (t0 - due > 100000000)
                h->late++;
            const char *p[] = {h->ids[k]};
            r = PQexecPrepared(c, "hb", 1, p, NULL, NULL, 0);
            int64_t t1 = mono_ns();
            if (PQresultStatus(r) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r, 0, 0), "-1") == 0)
                h->errors++;
            PQclear(r);
            h->sent++;
            if (h->nrtt < h->cap)
                h->rtt[h->nrtt++] = t1 - t0;
        }
    }
out:
    PQfinish(c);
    return NULL;
}

static int mode_remote(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    PGconn *c = connect_db(o.dsn);
    char **ids = calloc((size_t)o.n, sizeof *ids);
    if (!ids)
        die("out of memory");
    char pidbuf[16], tmo[32];
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());
    snprintf(tmo, sizeof tmo, "%g seconds", o.timeout_s);
    for (int i = 0; i < o.n; i++) {
        const char *p[] = {pidbuf, tmo};
        PGresult *r = q1(c, "SELECT pgwake.register_worker('remote', 'bench-remote', $1::int, $2::interval)", 2, p);
        ids[i] = strdup(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    int nt = o.conns < o.n ? o.conns : o.n; /* a thread with no worker would spin forever */
    struct hb_thread *h = calloc((size_t)nt, sizeof *h);
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    if (!h || !th)
        die("out of memory");
    int64_t start = mono_ns() + 200000000, end = start + (int64_t)(o.seconds * 1e9);
    size_t cap = (size_t)(o.seconds * 1000 / o.interval_ms + 2) * (size_t)(o.n / nt + 1);
    for (int j = 0; j < nt; j++) {
        h[j] = (struct hb_thread){.dsn = o.dsn, .ids = ids, .n = o.n, .first = j, .step = nt,
                                  .interval_ms = o.interval_ms, .start = start, .end = end, .cap = cap};
        h[j].rtt = malloc(cap * sizeof(int64_t));
        if (!h[j].rtt || pthread_create(&th[j], NULL, hb_main, &h[j]))
            die("unable to start a heartbeat thread");
    }
    sleep_until_mono(start + (int64_t)(o.interval_ms * 1e6) + 50000000);
    printf("registered %d\n", o.n);
    fflush(stdout);
    long sent = 0, late = 0, errors = 0;
    size_t nrtt = 0;
    for (int j = 0; j < nt; j++) {
        pthread_join(th[j], NULL);
        sent += h[j].sent;
        late += h[j].late;
        errors += h[j].errors;
        nrtt += h[j].nrtt;
    }
    int64_t *rtt = malloc((nrtt ? nrtt : 1) * sizeof *rtt);
    if (!rtt)
        die("out of memory");
    size_t k = 0;
    for (int j = 0; j < nt; j++)
        for (size_t i = 0; i < h[j].nrtt; i++)
            rtt[k++] = h[j].rtt[i];
    char extra[160];
    snprintf(extra, sizeof extra, "sent=%ld late=%ld errors=%ld per_s=%.1f", sent, late, errors,
             (double)sent / o.seconds);
    report("remote_heartbeat_rtt", extra, rtt, nrtt, NULL);
    for (int i = 0; i < o.n; i++) {
        const char *p[] = {ids[i]};
        PQclear(q1(c, "SELECT pgwake.worker_exited($1)", 1, p));
    }
    PQfinish(c);
    return errors ? 3 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: health worker|kill|hang|remote [options] (see bench/health.c)");
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "worker") == 0)
        return mode_worker();
    if (strcmp(argv[1], "kill") == 0)
        return mode_kill(argc, argv);
    if (strcmp(argv[1], "hang") == 0)
        return mode_hang(argc, argv);
    if (strcmp(argv[1], "remote") == 0)
        return mode_remote(argc, argv);
    die("unknown mode %s", argv[1]);
}
