/*
 * bench/polling.c - the usual alternative to pgwake, measured: workers that
 * poll pgwake.claim() every second (no LISTEN, no daemon), and, for the side
 * by side, a minimal measurement of pgwake's own wake path. One program, one
 * mode per role (bench/polling.sh drives them).
 *
 *   polling poll -n N [-c STAGES] [-m MEAN_MS] [-P PERIOD_MS] [-o SAMPLES] [-d DSN]
 *       STAGES poller threads, one per stage poll_0 .. poll_{STAGES-1}, each
 *       with its own connection and pgwake.register_worker: claim one task;
 *       when it returns a task, complete it and claim again at once; when it
 *       finds nothing, sleep PERIOD_MS (default 1000) and claim again - the
 *       loop of a typical polling worker. The main thread inserts N tasks
 *       (each in its own transaction, round robin over the stages), spaced
 *       uniformly at random in [0.5, 1.5] x MEAN_MS (default 400; with the
 *       default 4 stages a stage gets a task every 1.6 s on average, so most
 *       tasks find their poller asleep) and measures, per task, from the
 *       COMMIT returning (CLOCK_REALTIME) to the claim returning it in the
 *       poller.
 *
 *   polling idle [-c STAGES] [-t SECONDS] [-P PERIOD_MS] [-d DSN]
 *       The same pollers with nothing to do for SECONDS: claims sent, the CPU
 *       of their backends (/proc/PID/stat of pg_backend_pid()) and of this
 *       process.
 *
 *   polling worker
 *       A pgwake stage command (worker library, wake fd): claims, and
 *       completes each task with result {"claim_ns": CLOCK_REALTIME when the
 *       claim returned}.
 *
 *   polling listen -s STAGE -n N [-m MEAN_MS] [-k WARMUP] [-o SAMPLES] [-d DSN]
 *       pgwake's path ("listen mode"), against a running daemon whose stage
 *       STAGE runs `polling worker`: inserts WARMUP + N tasks spaced as in
 *       poll mode and measures COMMIT returned -> claim returned (read back
 *       from each task's result). With min_workers = max_workers = 1 this is
 *       a warm, idle worker woken by the daemon. bench/wake.sh measures the
 *       same in far more detail; this is the minimal twin of poll mode.
 *
 * DSN: -d, else libpq's environment. Machine-readable lines on stdout:
 *   RESULT bench=NAME n=... p50_us=... p90_us=... p99_us=... max_us=... ...
 * with -o, the samples in milliseconds, one per line, in task order.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "benchlib.h"
#include "pgwake/worker.h"

/* ---------------------------------------------------------------- statistics */

/* ---------------------------------------------------------------- options */

struct opts {
    const char *dsn, *stage, *out;
    int n, warmup, stages;
    double mean_ms, period_ms, seconds;
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->dsn = "";
    o->stage = "listen";
    o->n = 300;
    o->stages = 4;
    o->mean_ms = 400;
    o->period_ms = 1000;
    o->seconds = 30;
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "d:s:o:n:k:c:m:P:t:")) != -1) {
        switch (c) {
        case 'd': o->dsn = optarg; break;
        case 's': o->stage = optarg; break;
        case 'o': o->out = optarg; break;
        case 'n': o->n = atoi(optarg); break;
        case 'k': o->warmup = atoi(optarg); break;
        case 'c': o->stages = atoi(optarg); break;
        case 'm': o->mean_ms = atof(optarg); break;
        case 'P': o->period_ms = atof(optarg); break;
        case 't': o->seconds = atof(optarg); break;
        default: die("bad option (see the comment at the top of bench/polling.c)");
        }
    }
    if (o->n <= 0 || o->stages < 0 || o->mean_ms <= 0 || o->period_ms <= 0)
        die("-n, -m, -P must be > 0");
}

static PGconn *connect_db(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die("unable to connect: %s", PQerrorMessage(c));
    return c;
}

static void prepare(PGconn *c, const char *name, const char *sql, int np)
{
    PGresult *r = PQprepare(c, name, sql, np, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare %s: %s", name, PQerrorMessage(c));
    PQclear(r);
}

static PGresult *q1(PGconn *c, const char *sql, int np, const char *const *p)
{
    PGresult *r = PQexecParams(c, sql, np, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        die("%s: %s", sql, PQerrorMessage(c));
    return r;
}

/* gap: uniform in [0.5, 1.5] x mean, in ns. */
static int64_t gap(double mean_ms)
{
    return (int64_t)(mean_ms * (0.5 + (double)rand() / RAND_MAX) * 1e6);
}

static long proc_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    long ut = 0, st = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) == 2)
        return ut + st;
    return 0;
}

/* ---------------------------------------------------------------- pollers */

struct poller {
    const char *dsn;
    char stage[32];
    double period_ms;
    int64_t *claim_ns; /* by seq; written by this thread only, read after join */
    int total;
    atomic_int *claimed;
    atomic_bool *stop;
    atomic_long claims, empty;
    int backend_pid;
    PGconn *c;
    pthread_t th;
};

static void poller_open(struct poller *p)
{
    p->c = connect_db(p->dsn);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *prm[] = {p->stage, pid};
    PGresult *r = q1(p->c,
                     "SELECT pgwake.register_worker($1, 'bench-poll', $2::int, '1 hour'), pg_backend_pid()", 2, prm);
    char wid[96];
    snprintf(wid, sizeof wid, "%s", PQgetvalue(r, 0, 0));
    p->backend_pid = atoi(PQgetvalue(r, 0, 1));
    PQclear(r);
    /* Worker id and stage are bound once: the claim is one prepared statement. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT id, lease_token, payload->>'seq' FROM pgwake.claim('%s', '%s', '5 minutes', 1)",
             p->stage, wid);
    prepare(p->c, "claim", sql, 0);
    prepare(p->c, "complete", "SELECT pgwake.complete($1, $2)", 2);
}

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    while (!atomic_load(p->stop)) {
        PGresult *r = PQexecPrepared(p->c, "claim", 0, NULL, NULL, NULL, 0);
        int64_t t = now_ns();
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die("claim: %s", PQerrorMessage(p->c));
        atomic_fetch_add(&p->claims, 1);
        if (PQntuples(r) == 1) {
            int seq = atoi(PQgetvalue(r, 0, 2));
            if (seq >= 0 && seq < p->total && p->claim_ns) {
                p->claim_ns[seq] = t;
                atomic_fetch_add(p->claimed, 1);
            }
            const char *prm[] = {PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1)};
            PGresult *c = PQexecPrepared(p->c, "complete", 2, prm, NULL, NULL, 0);
            if (PQresultStatus(c) != PGRES_TUPLES_OK)
                die("complete: %s", PQerrorMessage(p->c));
            PQclear(c);
            PQclear(r);
            continue; /* there may be more: claim again at once */
        }
        PQclear(r);
        atomic_fetch_add(&p->empty, 1);
        /* Nothing: sleep one period (in slices, so a stop is seen soon). */
        int64_t until = mono_ns() + (int64_t)(p->period_ms * 1e6);
        while (!atomic_load(p->stop) && mono_ns() < until) {
            int64_t step = until - mono_ns();
            if (step > 50000000)
                step = 50000000;
            sleep_until_mono(mono_ns() + step);
        }
    }
    return NULL;
}

static struct poller *start_pollers(const struct opts *o, int64_t *claim_ns, int total, atomic_int *claimed,
                                    atomic_bool *stop)
{
    struct poller *ps = calloc((size_t)o->stages, sizeof *ps);
    if (!ps)
        die("out of memory");
    for (int k = 0; k < o->stages; k++) {
        struct poller *p = &ps[k];
        p->dsn = o->dsn;
        snprintf(p->stage, sizeof p->stage, "poll_%d", k);
        p->period_ms = o->period_ms;
        p->claim_ns = claim_ns;
        p->total = total;
        p->claimed = claimed;
        p->stop = stop;
        poller_open(p);
    }
    for (int k = 0; k < o->stages; k++)
        if (pthread_create(&ps[k].th, NULL, poller_main, &ps[k]))
            die("pthread_create failed");
    return ps;
}

static void stop_pollers(struct poller *ps, int n, atomic_bool *stop)
{
    atomic_store(stop, true);
    for (int k = 0; k < n; k++) {
        pthread_join(ps[k].th, NULL);
        PQfinish(ps[k].c);
    }
}

static int mode_poll(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    if (o.stages <= 0)
        die("poll: -c STAGES must be > 0");
    int total = o.n;
    int64_t *commit = calloc((size_t)total, sizeof *commit), *claim = calloc((size_t)total, sizeof *claim);
    if (!commit || !claim)
        die("out of memory");
    PGconn *c = connect_db(o.dsn);
    PQclear(q1(c, "DELETE FROM pgwake.tasks WHERE stage LIKE 'poll\\_%' AND status = 'pending'", 0, NULL));
    prepare(c, "ins", "INSERT INTO pgwake.tasks(stage, payload) VALUES ($1, $2::jsonb)", 2);
    atomic_int claimed = 0;
    atomic_bool stop = false;
    struct poller *ps = start_pollers(&o, claim, total, &claimed, &stop);
    srand((unsigned)getpid());
    /* Let the pollers fall into their sleep, each at its own phase. */
    sleep_until_mono(mono_ns() + 1500000000LL);
    int64_t t = mono_ns();
    for (int i = 0; i < total; i++) {
        t += gap(o.mean_ms);
        sleep_until_mono(t);
        char payload[48];
        snprintf(payload, sizeof payload, "{\"seq\": %d}", i);
        const char *p[] = {ps[i % o.stages].stage, payload};
        PGresult *r = PQexecPrepared(c, "ins", 2, p, NULL, NULL, 0);
        commit[i] = now_ns();
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("insert: %s", PQerrorMessage(c));
        PQclear(r);
    }
    int64_t deadline = mono_ns() + (int64_t)(o.period_ms * 5e6) + 5000000000LL;
    while (atomic_load(&claimed) < total && mono_ns() < deadline)
        poll(NULL, 0, 20);
    stop_pollers(ps, o.stages, &stop);
    int64_t *lat = calloc((size_t)total, sizeof *lat);
    size_t n = 0;
    for (int i = 0; i < total; i++)
        if (claim[i])
            lat[n++] = claim[i] - commit[i];
    char extra[128];
    snprintf(extra, sizeof extra, "lost=%d stages=%d period_ms=%.0f mean_gap_ms=%.0f", total - (int)n, o.stages,
             o.period_ms, o.mean_ms);
    report("poll", extra, lat, n, o.out);
    PQfinish(c);
    return n < (size_t)total ? 3 : 0;
}

static int mode_idle(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    if (o.stages <= 0)
        die("idle: -c STAGES must be > 0");
    atomic_int claimed = 0;
    atomic_bool stop = false;
    struct poller *ps = start_pollers(&o, NULL, 0, &claimed, &stop);
    sleep_until_mono(mono_ns() + 2000000000LL); /* settle */
    long c0 = 0, b0 = 0;
    for (int k = 0; k < o.stages; k++) {
        c0 += atomic_load(&ps[k].claims);
        b0 += proc_ticks(ps[k].backend_pid);
    }
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = mono_ns();
    sleep_until_mono(t0 + (int64_t)(o.seconds * 1e9));
    int64_t t1 = mono_ns();
    long c1 = 0, b1 = 0;
    for (int k = 0; k < o.stages; k++) {
        c1 += atomic_load(&ps[k].claims);
        b1 += proc_ticks(ps[k].backend_pid);
    }
    getrusage(RUSAGE_SELF, &ru1);
    stop_pollers(ps, o.stages, &stop);
    double secs = (double)(t1 - t0) / 1e9, tick = (double)sysconf(_SC_CLK_TCK);
    double self = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                  (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("RESULT bench=poll_idle_client pollers=%d seconds=%.1f claims=%ld claims_per_s_per_worker=%.3f "
           "backend_cpu_pct_per_worker=%.3f client_cpu_pct=%.3f\n",
           o.stages, secs, c1 - c0, (double)(c1 - c0) / secs / o.stages,
           (double)(b1 - b0) / tick / secs * 100 / o.stages, self / secs * 100);
    fprintf(stderr, "poll_idle: %d pollers, %.1f s: %ld claims (%.2f/s per worker)\n", o.stages, secs, c1 - c0,
            (double)(c1 - c0) / secs / o.stages);
    return 0;
}

/* ---------------------------------------------------------------- pgwake's path */

static pgwake_worker *g_worker;

static void on_term(int sig)
{
    (void)sig;
    if (g_worker)
        pgwake_request_stop(g_worker);
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
        int64_t claim = now_ns();
        if (n == PGWAKE_STOPPED)
            continue;
        if (n < 0) {
            fprintf(stderr, "polling worker: claim: %s\n", pgwake_last_error(w));
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
        char result[64];
        snprintf(result, sizeof result, "{\"claim_ns\": %" PRId64 "}", claim);
        if (pgwake_complete(w, t, result) == PGWAKE_ERROR)
            fprintf(stderr, "polling worker: complete: %s\n", pgwake_last_error(w));
        pgwake_task_free(t);
        pgwake_poll_wake(w);
    }
    pgwake_close(w);
    return rc;
}

static int mode_listen(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    int total = o.warmup + o.n;
    int64_t *commit = calloc((size_t)total, sizeof *commit), *claim = calloc((size_t)total, sizeof *claim);
    int64_t *sent = calloc((size_t)total, sizeof *sent);
    if (!commit || !claim || !sent)
        die("out of memory");
    PGconn *c = connect_db(o.dsn);
    const char *st[] = {o.stage};
    PQclear(q1(c, "DELETE FROM pgwake.tasks WHERE stage = $1", 1, st));
    prepare(c, "ins", "INSERT INTO pgwake.tasks(stage, payload) VALUES ($1, $2::jsonb)", 2);
    srand((unsigned)getpid());
    int64_t t = mono_ns();
    for (int i = 0; i < total; i++) {
        t += gap(o.mean_ms);
        sleep_until_mono(t);
        char payload[48];
        snprintf(payload, sizeof payload, "{\"seq\": %d}", i);
        const char *p[] = {o.stage, payload};
        sent[i] = now_ns();
        PGresult *r = PQexecPrepared(c, "ins", 2, p, NULL, NULL, 0);
        commit[i] = now_ns();
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("insert: %s", PQerrorMessage(c));
        PQclear(r);
    }
    /* Only now read the results back, so the measurement adds no query. */
    int64_t deadline = mono_ns() + 30000000000LL;
    int done = 0;
    while (mono_ns() < deadline) {
        PGresult *r = q1(c, "SELECT count(*) FROM pgwake.tasks WHERE stage = $1 AND status = 'done'", 1, st);
        done = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (done >= total)
            break;
        poll(NULL, 0, 100);
    }
    PGresult *r = q1(c,
                     "SELECT (payload->>'seq')::int, result->>'claim_ns' FROM pgwake.tasks"
                     " WHERE stage = $1 AND status = 'done'",
                     1, st);
    for (int i = 0; i < PQntuples(r); i++) {
        int seq = atoi(PQgetvalue(r, i, 0));
        if (seq >= 0 && seq < total && !PQgetisnull(r, i, 1))
            claim[seq] = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    }
    PQclear(r);
    int64_t *lat = calloc((size_t)total, sizeof *lat), *lat_send = calloc((size_t)total, sizeof *lat);
    size_t n = 0;
    for (int i = o.warmup; i < total; i++)
        if (claim[i]) {
            lat_send[n] = claim[i] - sent[i];
            lat[n++] = claim[i] - commit[i];
        }
    char extra[96];
    snprintf(extra, sizeof extra, "lost=%d mean_gap_ms=%.0f", o.n - (int)n, o.mean_ms);
    report("listen_warm", extra, lat, n, o.out);
    /* The COMMIT is seen returning late when the producer is scheduled late
     * (a busy machine): the claim can then come "before" it. From the INSERT
     * being sent is an upper bound that cannot go negative. */
    report("listen_warm_from_send", NULL, lat_send, n, NULL);
    PQfinish(c);
    return n < (size_t)o.n ? 3 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: polling poll|idle|worker|listen [options] (see bench/polling.c)");
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "poll") == 0)
        return mode_poll(argc, argv);
    if (strcmp(argv[1], "idle") == 0)
        return mode_idle(argc, argv);
    if (strcmp(argv[1], "worker") == 0)
        return mode_worker();
    if (strcmp(argv[1], "listen") == 0)
        return mode_listen(argc, argv);
    die("unknown mode %s", argv[1]);
}
