/*
 * bench/claim.c - claim+complete throughput of the pgwake task queue.
 *
 * N threads, each with its own connection and its own worker registered with
 * pgwake.register_worker(), run claim+complete cycles for a fixed time:
 *
 *   single: SELECT ... FROM pgwake.claim(stage, worker, '5 minutes', 1)
 *           then SELECT pgwake.complete(id, token)         (2 round trips, 2 commits)
 *   batch:  SELECT ... FROM pgwake.claim(stage, worker, '5 minutes', B)
 *           then one statement completing the B tasks     (2 round trips, 2 commits)
 *
 * Every statement runs in autocommit, prepared once per connection. One cycle
 * is one task: the rate is tasks per second; the latencies are those of one
 * round (claim + complete: one task in single mode, B tasks in batch mode).
 *
 * Before measuring (unless -S) the program deletes the stage's leftover
 * pending and leased tasks, inserts -p fresh pending ones in one
 * INSERT ... SELECT generate_series, runs VACUUM ANALYZE pgwake.tasks and a
 * CHECKPOINT, so each measurement starts from the same state. Should the queue
 * run dry during the measurement, the result is void: the program says so and
 * exits with status 3 (rerun with a larger -p).
 *
 * Besides the rate and latencies, which depend on how much of the machine the
 * benchmark gets, it reports costs per task that depend on it much less
 * (buffers and WAL not at all; CPU somewhat, through caches and context
 * switches): server CPU (utime +
 * stime of the workers' backends from /proc, when the server runs on this
 * machine), shared-buffer accesses and commits (pg_stat_database deltas) and
 * WAL bytes, all over the whole run including the warm-up.
 *
 * Output: a human summary on stderr and one machine-readable line on stdout:
 *   RESULT label=... mode=single threads=4 batch=1 seconds=5.00 tasks=...
 *          rate=... p50_ms=... p99_ms=... done_before=... pending_before=...
 *          cpu_ms_per_task=... bufs_per_task=... wal_per_task=... commits_per_task=...
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
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

#define MAX_THREADS 256
#define MAX_BATCH 1000

struct opts {
    const char *dsn;
    const char *stage;
    const char *label;
    int threads;
    int batch;       /* tasks per claim; 1 = single mode */
    double seconds;  /* measured window */
    double warmup;   /* cycles before the window are not counted */
    long prefill;    /* pending tasks to insert; 0 = automatic */
    bool setup;      /* delete leftovers, prefill, vacuum, checkpoint */
    const char *complete_many; /* the statement completing a batch */
};

/* Completes a batch in one statement: one round trip, one transaction. */
#define COMPLETE_MANY_SQL \
    "SELECT count(*) FROM unnest($1::bigint[], $2::bigint[]) AS u(id, tok) " \
    " WHERE pgwake.complete(u.id, u.tok)"

struct worker {
    pthread_t thread;
    int idx;
    PGconn *conn;
    char wid[128];
    int backend_pid;
    long cpu_ticks;  /* backend utime + stime at the start, then the delta */
    double *lat_ms;  /* one entry per measured round */
    size_t nlat, cap;
    long tasks;      /* tasks completed inside the window */
    long rounds;     /* rounds (claim + complete) inside the window */
    long all_tasks;  /* tasks completed, warm-up included */
    long empty;      /* claims that returned no row: the queue ran dry */
    long lost;       /* complete() that returned false: must stay 0 */
    char err[512];
};

static struct opts g_opt;
static pthread_barrier_t g_barrier;
static double g_from, g_until; /* CLOCK_MONOTONIC seconds: the measured window */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

 static void usage(FILE *f)
{
    fputs("usage: claim -d DSN [-m single|batch] [-n THREADS] [-b BATCH] [-t SECONDS]\n"
          "             [-w WARMUP] [-p PREFILL] [-s STAGE] [-l LABEL] [-S] [-B SQL]\n"
          "  -d DSN      libpq connection string of a database migrated with pgwake's schema\n"
          "  -m MODE     single (claim n=1, complete) or batch (claim n=BATCH, complete all\n"
          "              in one statement); default single\n"
          "  -n THREADS  concurrent workers, each with its own connection (default 4)\n"
          "  -b BATCH    tasks per claim in batch mode (default 10)\n"
          "  -t SECONDS  length of the measured window (default 5)\n"
          "  -w WARMUP   seconds run before the window and not counted (default 1)\n"
          "  -p PREFILL  pending tasks inserted before the run (default 30000 per second\n"
          "              of warm-up + window, 60000 in batch mode)\n"
          "  -s STAGE    stage name used for the tasks and workers (default bench)\n"
          "  -l LABEL    free text copied into the RESULT line (default none)\n"
          "  -S          skip the set-up (cleanup, prefill, VACUUM ANALYZE, CHECKPOINT)\n"
          "  -B SQL      statement completing a batch: $1 the ids, $2 the lease tokens (bigint[]),\n"
          "              returning the number completed (default: pgwake.complete on each)\n",
          f);
}

/* Runs one statement that must succeed; returns its result (caller clears). */
static PGresult *must(PGconn *c, PGresult *r, const char *what)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        die("%s: %s", what, PQerrorMessage(c));
    return r;
}

static void exec_cmd(PGconn *c, const char *sql)
{
    PQclear(must(c, PQexec(c, sql), sql));
}

static PGconn *connect_db(const char *dsn, const char *appname)
{
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {dsn, appname, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK)
        die("cannot connect: %s", c ? PQerrorMessage(c) : "out of memory");
    return c;
}

static long scalar_long(PGconn *c, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = must(c, PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0), sql);
    long v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return v;
}

/* utime + stime of a local process in clock ticks; -1 if unreadable. */
static long proc_cpu_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long ut, st;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

struct db_counters {
    long long bufs, commits;
    char lsn[32];
};

/* Database-wide counters, after flushing our own pending statistics. */
static void read_counters(PGconn *c, struct db_counters *d)
{
    PGresult *r = PQexec(c, "SELECT pg_catalog.pg_stat_force_next_flush()");
    PQclear(r); /* PostgreSQL 15+; older servers flush within a second anyway */
    r = must(c, PQexec(c,
        "SELECT blks_hit + blks_read, xact_commit, pg_catalog.pg_current_wal_insert_lsn() "
        "  FROM pg_catalog.pg_stat_database WHERE datname = pg_catalog.current_database()"),
        "read pg_stat_database");
    d->bufs = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    d->commits = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    snprintf(d->lsn, sizeof d->lsn, "%s", PQgetvalue(r, 0, 2));
    PQclear(r);
}

static long long wal_diff(PGconn *c, const char *to, const char *from)
{
    const char *p[2] = {to, from};
    PGresult *r = must(c, PQexecParams(c, "SELECT pg_catalog.pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::bigint",
                                       2, NULL, p, NULL, NULL, 0), "pg_wal_lsn_diff");
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void setup(PGconn *c, long prefill)
{
    char nbuf[32];
    const char *p[2] = {g_opt.stage, nbuf};
    double t0 = now_s();

    snprintf(nbuf, sizeof nbuf, "%ld", prefill);
    PQclear(must(c, PQexecParams(c,
        "DELETE FROM pgwake.tasks WHERE stage = $1 AND status IN ('pending', 'leased')",
        1, NULL, p, NULL, NULL, 0), "delete leftover tasks"));
    PQclear(must(c, PQexecParams(c,
        "INSERT INTO pgwake.tasks (stage, payload) "
        "SELECT $1, jsonb_build_object('n', g) FROM generate_series(1, $2::int) g",
        2, NULL, p, NULL, NULL, 0), "prefill"));
    exec_cmd(c, "VACUUM ANALYZE pgwake.tasks");
    PGresult *r = PQexec(c, "CHECKPOINT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "claim: CHECKPOINT skipped: %s", PQerrorMessage(c));
    PQclear(r);
    fprintf(stderr, "claim: set-up (%ld pending, vacuum, checkpoint) took %.1f s\n",
            prefill, now_s() - t0);
}

static void prepare(struct worker *w)
{
    PQclear(must(w->conn, PQprepare(w->conn, "claim",
        "SELECT id, lease_token FROM pgwake.claim($1::text, $2::text, '5 minutes'::interval, $3::int)",
        0, NULL), "prepare claim"));
    PQclear(must(w->conn, PQprepare(w->conn, "complete",
        "SELECT pgwake.complete($1::bigint, $2::bigint)", 0, NULL), "prepare complete"));
    PQclear(must(w->conn, PQprepare(w->conn, "complete_many", g_opt.complete_many, 0, NULL),
                 "prepare complete_many"));
}

static bool record(struct worker *w, double ms)
{
    if (w->nlat == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 65536;
        double *n = realloc(w->lat_ms, ncap * sizeof *n);
        if (!n) {
            snprintf(w->err, sizeof w->err, "out of memory");
            return false;
        }
        w->lat_ms = n;
        w->cap = ncap;
    }
    w->lat_ms[w->nlat++] = ms;
    return true;
}

/* Appends "{a,b,c}" array text of column col of r to buf. */
static void array_text(PGresult *r, int col, char *buf, size_t size)
{
    size_t off = 0;
    int n = PQntuples(r);
    buf[off++] = '{';
    for (int i = 0; i < n && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "," : "", PQgetvalue(r, i, col));
    if (off + 2 <= size) {
        buf[off++] = '}';
        buf[off] = '\0';
    } else {
        buf[size - 1] = '\0';
    }
}

/* One round: claim up to batch tasks, complete them. Returns tasks done, -1 on error. */
static int round_trip(struct worker *w, char *ids, char *toks, size_t size)
{
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", g_opt.batch);
    const char *cp[3] = {g_opt.stage, w->wid, nbuf};
    PGresult *r = PQexecPrepared(w->conn, "claim", 3, cp, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(w->err, sizeof w->err, "claim: %s", PQerrorMessage(w->conn));
        PQclear(r);
        return -1;
    }
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        w->empty++;
        return 0;
    }
    int ok;
    if (g_opt.batch == 1) {
        const char *pp[2] = {PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1)};
        PGresult *c = PQexecPrepared(w->conn, "complete", 2, pp, NULL, NULL, 0);
        if (PQresultStatus(c) != PGRES_TUPLES_OK) {
            snprintf(w->err, sizeof w->err, "complete: %s", PQerrorMessage(w->conn));
            PQclear(c);
            PQclear(r);
            return -1;
        }
        ok = strcmp(PQgetvalue(c, 0, 0), "t") == 0;
        PQclear(c);
    } else {
        array_text(r, 0, ids, size);
        array_text(r, 1, toks, size);
        const char *pp[2] = {ids, toks};
        PGresult *c = PQexecPrepared(w->conn, "complete_many", 2, pp, NULL, NULL, 0);
        if (PQresultStatus(c) != PGRES_TUPLES_OK) {
            snprintf(w->err, sizeof w->err, "complete batch: %s", PQerrorMessage(w->conn));
            PQclear(c);
            PQclear(r);
            return -1;
        }
        ok = atoi(PQgetvalue(c, 0, 0));
        PQclear(c);
    }
    PQclear(r);
    w->lost += n - ok;
    return ok;
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    size_t size = (size_t)g_opt.batch * 24 + 8;
    char *ids = malloc(size), *toks = malloc(size);
    if (!ids || !toks) {
        snprintf(w->err, sizeof w->err, "out of memory");
        pthread_barrier_wait(&g_barrier);
        goto out;
    }
    pthread_barrier_wait(&g_barrier);
    for (;;) {
        double t0 = now_s();
        if (t0 >= g_until)
            break;
        int done = round_trip(w, ids, toks, size);
        if (done < 0)
            break;
        if (done == 0) /* dry: the result is void, stop early */
            break;
        double t1 = now_s();
        w->all_tasks += done;
        if (t0 >= g_from && t1 <= g_until) {
            w->tasks += done;
            w->rounds++;
            if (!record(w, (t1 - t0) * 1e3))
                break;
        }
    }
out:
    free(ids);
    free(toks);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct_ms(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    size_t k = (size_t)ceil(q * (double)n);
    if (k < 1)
        k = 1;
    return v[k - 1];
}

static double parse_pos(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= 0))
        die("bad %s: %s", what, s);
    return v;
}

int main(int argc, char **argv)
{
    g_opt = (struct opts){.stage = "bench", .label = "", .threads = 4, .batch = 0,
                          .seconds = 5, .warmup = 1, .setup = true,
                          .complete_many = COMPLETE_MANY_SQL};
    const char *mode = "single";
    int batch_arg = 10, c;
    while ((c = getopt(argc, argv, "d:m:n:b:t:w:p:s:l:SB:h")) != -1) {
        switch (c) {
        case 'd': g_opt.dsn = optarg; break;
        case 'm': mode = optarg; break;
        case 'n': g_opt.threads = (int)parse_pos(optarg, "thread count"); break;
        case 'b': batch_arg = (int)parse_pos(optarg, "batch size"); break;
        case 't': g_opt.seconds = parse_pos(optarg, "seconds"); break;
        case 'w': g_opt.warmup = parse_pos(optarg, "warm-up"); break;
        case 'p': g_opt.prefill = (long)parse_pos(optarg, "prefill"); break;
        case 's': g_opt.stage = optarg; break;
        case 'l': g_opt.label = optarg; break;
        case 'S': g_opt.setup = false; break;
        case 'B': g_opt.complete_many = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !g_opt.dsn) {
        usage(stderr);
        return 2;
    }
    if (strcmp(mode, "single") == 0)
        g_opt.batch = 1;
    else if (strcmp(mode, "batch") == 0)
        g_opt.batch = batch_arg;
    else
        die("mode must be single or batch, not %s", mode);
    if (g_opt.threads < 1 || g_opt.threads > MAX_THREADS)
        die("threads must be 1..%d", MAX_THREADS);
    if (g_opt.batch < 1 || g_opt.batch > MAX_BATCH)
        die("batch must be 1..%d", MAX_BATCH);
    if (g_opt.seconds <= 0)
        die("seconds must be > 0");
    if (g_opt.prefill == 0)
        g_opt.prefill = (long)ceil((g_opt.seconds + g_opt.warmup) * (g_opt.batch > 1 ? 60000 : 30000));

    PGconn *ctl = connect_db(g_opt.dsn, "pgwake-bench-claim");
    if (g_opt.setup)
        setup(ctl, g_opt.prefill);
    const char *sp[1] = {g_opt.stage};
    long done_before = scalar_long(ctl,
        "SELECT count(*) FROM pgwake.tasks WHERE status = 'done'", 0, NULL);
    long pending_before = scalar_long(ctl,
        "SELECT count(*) FROM pgwake.tasks WHERE stage = $1 AND status = 'pending'", 1, sp);

    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    char pidbuf[16];
    snprintf(pidbuf, sizeof pidbuf, "%d", (int)getpid());

    static struct worker ws[MAX_THREADS];
    for (int i = 0; i < g_opt.threads; i++) {
        struct worker *w = &ws[i];
        char app[64];
        w->idx = i;
        snprintf(app, sizeof app, "pgwake-bench-claim-%d", i);
        w->conn = connect_db(g_opt.dsn, app);
        const char *rp[3] = {g_opt.stage, host, pidbuf};
        PGresult *r = must(w->conn, PQexecParams(w->conn,
            "SELECT pgwake.register_worker($1, $2, $3::int)", 3, NULL, rp, NULL, NULL, 0),
            "register_worker");
        if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
            die("register_worker returned no id");
        snprintf(w->wid, sizeof w->wid, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        w->backend_pid = PQbackendPID(w->conn);
        prepare(w);
    }

    struct db_counters before, after;
    read_counters(ctl, &before);
    for (int i = 0; i < g_opt.threads; i++)
        ws[i].cpu_ticks = proc_cpu_ticks(ws[i].backend_pid);

    if (pthread_barrier_init(&g_barrier, NULL, (unsigned)g_opt.threads + 1) != 0)
        die("pthread_barrier_init failed");
    for (int i = 0; i < g_opt.threads; i++)
        if (pthread_create(&ws[i].thread, NULL, run_worker, &ws[i]) != 0)
            die("pthread_create failed");
    double start = now_s();
    g_from = start + g_opt.warmup;
    g_until = g_from + g_opt.seconds;
    pthread_barrier_wait(&g_barrier);
    for (int i = 0; i < g_opt.threads; i++)
        pthread_join(ws[i].thread, NULL);
    bool have_cpu = true;
    long cpu_ticks = 0;
    for (int i = 0; i < g_opt.threads; i++) {
        long t = proc_cpu_ticks(ws[i].backend_pid);
        if (t < 0 || ws[i].cpu_ticks < 0)
            have_cpu = false;
        else
            cpu_ticks += t - ws[i].cpu_ticks;
    }

    long tasks = 0, rounds = 0, empty = 0, lost = 0, all_tasks = 0;
    size_t nlat = 0;
    bool failed = false;
    for (int i = 0; i < g_opt.threads; i++) {
        struct worker *w = &ws[i];
        if (w->err[0]) {
            fprintf(stderr, "claim: worker %d: %s", i, w->err);
            failed = true;
        }
        tasks += w->tasks;
        rounds += w->rounds;
        empty += w->empty;
        lost += w->lost;
        all_tasks += w->all_tasks;
        nlat += w->nlat;
    }
    double *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
    if (!lat)
        die("out of memory");
    size_t off = 0;
    for (int i = 0; i < g_opt.threads; i++) {
        if (ws[i].nlat)
            memcpy(lat + off, ws[i].lat_ms, ws[i].nlat * sizeof *lat);
        off += ws[i].nlat;
        free(ws[i].lat_ms);
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    double p50 = pct_ms(lat, nlat, 0.50), p99 = pct_ms(lat, nlat, 0.99);
    double rate = (double)tasks / g_opt.seconds;

    for (int i = 0; i < g_opt.threads; i++) {
        const char *xp[1] = {ws[i].wid};
        if (!ws[i].err[0])
            PQclear(PQexecParams(ws[i].conn, "SELECT pgwake.worker_exited($1)", 1, NULL, xp,
                                 NULL, NULL, 0));
        PQfinish(ws[i].conn);
    }
    /* The workers' backends flush their statistics as they exit. */
    for (int tries = 0; tries < 100; tries++) {
        long left = scalar_long(ctl, "SELECT count(*) FROM pg_catalog.pg_stat_activity "
                                     " WHERE application_name LIKE 'pgwake-bench-claim-%'", 0, NULL);
        if (left == 0)
            break;
        usleep(20000);
    }
    read_counters(ctl, &after);
    long long wal = wal_diff(ctl, after.lsn, before.lsn);
    PQfinish(ctl);
    double per = all_tasks > 0 ? 1.0 / (double)all_tasks : NAN;
    double cpu_ms = have_cpu ? (double)cpu_ticks * 1e3 / (double)sysconf(_SC_CLK_TCK) * per : NAN;
    double bufs = (double)(after.bufs - before.bufs) * per;
    double commits = (double)(after.commits - before.commits) * per;
    double walb = (double)wal * per;

    fprintf(stderr,
            "claim: %s n=%d batch=%d: %ld tasks in %.2f s = %.0f tasks/s; round (claim+complete "
            "of %d) p50 %.3f ms p99 %.3f ms over %ld rounds; %ld done tasks before; per task: "
            "%.3f ms server CPU, %.1f buffer accesses, %.0f WAL bytes, %.2f commits\n",
            mode, g_opt.threads, g_opt.batch, tasks, g_opt.seconds, rate, g_opt.batch, p50, p99,
            rounds, done_before, cpu_ms, bufs, walb, commits);
    printf("RESULT label=%s mode=%s threads=%d batch=%d seconds=%.2f tasks=%ld rate=%.1f "
           "p50_ms=%.3f p99_ms=%.3f rounds=%ld done_before=%ld pending_before=%ld empty=%ld "
           "lost=%ld cpu_ms_per_task=%.4f bufs_per_task=%.1f wal_per_task=%.0f "
           "commits_per_task=%.3f\n",
           g_opt.label[0] ? g_opt.label : "-", mode, g_opt.threads, g_opt.batch, g_opt.seconds,
           tasks, rate, p50, p99, rounds, done_before, pending_before, empty, lost, cpu_ms, bufs,
           walb, commits);
    fflush(stdout);
    free(lat);
    if (failed)
        return 1;
    if (lost) {
        fprintf(stderr, "claim: %ld complete() calls returned false: a bug\n", lost);
        return 1;
    }
    if (empty) {
        fprintf(stderr, "claim: the queue ran dry after %ld tasks (prefill %ld): result void, "
                        "rerun with a larger -p\n", all_tasks, g_opt.prefill);
        return 3;
    }
    return 0;
}
