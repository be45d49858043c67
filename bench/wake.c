/*
 * bench/wake.c - wake-latency benchmark of pgwake: one program, one mode per role.
 *
 *   wake worker OUTFILE
 *       The stage's command, run by the daemon. Uses the worker library:
 *       pgwake_open, then pgwake_run's loop written with the low-level calls
 *       (claim, wait_idle, complete, poll_wake). For every claimed task it
 *       appends one line
 *           seq claim_ns main_ns open_ns pid worker_id first woke_ns start_ns
 *       to OUTFILE (O_APPEND), all CLOCK_REALTIME: claim_ns when pgwake_claim
 *       returned the task, main_ns when main() began, open_ns when pgwake_open
 *       returned, woke_ns when pgwake_wait_idle last returned (a W), start_ns
 *       when this claim began; first is 1 for the first task of the process.
 *       The payload is {"seq": N}; anything else is completed, not written.
 *
 *   wake produce -s STAGE -n N -i MS -o OUTFILE [-k WARMUP] [-t TIMEOUT_S] [-l LABEL] [-d DSN]
 *       Inserts WARMUP + N tasks, one every MS milliseconds (+-10 % jitter, so
 *       nothing periodic lines up with it), each in its own transaction:
 *       INSERT INTO pgwake.tasks(stage, payload) VALUES (STAGE, '{"seq": i}').
 *       It keeps, in memory, CLOCK_REALTIME when each COMMIT returned; then
 *       waits until OUTFILE has a line for every task and joins: latency =
 *       claim_ns - commit_ns. A task whose worker process started (main_ns)
 *       after the commit is "cold"; for those the start-up is split using
 *       pgwake.workers.started_at (now() of the daemon's register_worker
 *       transaction): commit -> register -> main() -> pgwake_open returned ->
 *       claim returned. A warm task whose worker was woken (W) after its
 *       commit is split into commit -> woken (notification, daemon, wake fd)
 *       and the claim call. The first WARMUP tasks are not counted.
 *
 *   wake listen -n N -i MS [-d DSN]
 *       Baseline: INSERT + pg_notify in one statement on one connection, a
 *       LISTENing libpq client (a thread blocked in poll(2) on its own
 *       connection) in the same program; latency = notification read - COMMIT
 *       returned.
 *
 *   wake roundtrip -n N [-d DSN]
 *       Baselines: SELECT 1; a pgwake_claim() that returns a task (the worker
 *       library, self-registered, drain mode, stage bench_rt); an empty
 *       pgwake_claim(); pgwake_complete().
 *
 *   wake spawn -n N [-d DSN]
 *       Baselines: fork+exec+waitpid of /bin/true and of this program (`wake
 *       noop`, linked as the bench workers are); a new libpq connection
 *       (PQconnectdb until CONNECTION_OK).
 *
 *   wake burst -s STAGE -n N -c CONNS [-T] [-d DSN]
 *       Sends N notifications `pg_notify('pgwake_task', STAGE)` (with -T: N
 *       INSERTs INTO pgwake.tasks, whose trigger notifies), each in its own
 *       transaction (libpq pipeline mode, a sync after each), from CONNS
 *       connections at once, and prints how long that took.
 *
 *   wake noop
 *       Returns 0 (for the exec baseline).
 *
 *   wake pause
 *       Sleeps until a signal ends it (a process linked like a worker that
 *       does nothing: the memory baseline of bench/idle.sh).
 *
 * DSN: -d, else libpq's environment (PGHOST, ...). Output: a human summary on
 * stderr and machine-readable lines on stdout:
 *   RESULT bench=NAME n=... p50_us=... p90_us=... p99_us=... max_us=... ...
 * Times are printed, never asserted.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "benchlib.h"
#include "pgwake/worker.h"

/* ---------------------------------------------------------------- statistics */

/* ---------------------------------------------------------------- options */

struct opts {
    const char *dsn, *stage, *out, *label;
    int n, warmup, conns;
    bool tasks;
    double interval_ms, timeout_s;
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->dsn = "";
    o->stage = "bench";
    o->label = "";
    o->n = 1000;
    o->conns = 4;
    o->interval_ms = 20;
    o->timeout_s = 20;
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "d:s:o:l:n:k:c:i:t:T")) != -1) {
        switch (c) {
        case 'd': o->dsn = optarg; break;
        case 's': o->stage = optarg; break;
        case 'o': o->out = optarg; break;
        case 'l': o->label = optarg; break;
        case 'n': o->n = atoi(optarg); break;
        case 'k': o->warmup = atoi(optarg); break;
        case 'c': o->conns = atoi(optarg); break;
        case 'i': o->interval_ms = atof(optarg); break;
        case 't': o->timeout_s = atof(optarg); break;
        case 'T': o->tasks = true; break;
        default: die("bad option (see the comment at the top of bench/wake.c)");
        }
    }
    if (o->n <= 0 || o->conns <= 0 || o->warmup < 0)
        die("-n, -c must be > 0 and -k >= 0");
}

static PGconn *connect_db(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die("unable to connect: %s", PQerrorMessage(c));
    return c;
}

/* next_slot: interval_ms +- 10 % of jitter. */
static int64_t next_gap(double interval_ms)
{
    double j = 0.9 + 0.2 * ((double)rand() / RAND_MAX);
    return (int64_t)(interval_ms * j * 1e6);
}

/* ---------------------------------------------------------------- worker */

static pgwake_worker *g_worker;
static int g_out_fd = -1;
static int64_t g_main_ns, g_open_ns, g_woke_ns, g_claim_start_ns;
static bool g_first = true;

static void on_term(int sig)
{
    (void)sig;
    if (g_worker)
        pgwake_request_stop(g_worker);
}

/* record writes one line for a claimed task (claim = when pgwake_claim returned). */
static bool record(pgwake_worker *w, const pgwake_task *t, int64_t claim)
{
    const char *p = strstr(t->payload, "\"seq\"");
    if (!p || !(p = strchr(p, ':')))
        return true;
    long seq = strtol(p + 1, NULL, 10);
    char line[320];
    int n = snprintf(line, sizeof line,
                     "%ld %" PRId64 " %" PRId64 " %" PRId64 " %d %s %d %" PRId64 " %" PRId64 "\n",
                     seq, claim, g_main_ns, g_open_ns, (int)getpid(), pgwake_worker_id(w),
                     g_first ? 1 : 0, g_woke_ns, g_claim_start_ns);
    g_first = false;
    return write(g_out_fd, line, (size_t)n) == n;
}

/*
 * The worker loop of pgwake_run() (see src/libworker/run.c), written with the
 * low-level calls so that the moment a W ended pgwake_wait_idle() and the
 * moment each claim began can be recorded too.
 */
static int mode_worker(int argc, char **argv)
{
    g_main_ns = now_ns();
    const char *out = argc > 2 ? argv[2] : getenv("BENCH_WAKE_OUT");
    if (!out)
        die("worker: no output file (argument or BENCH_WAKE_OUT)");
    g_out_fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (g_out_fd < 0)
        die("worker: %s: %s", out, strerror(errno));
    char err[256];
    g_worker = pgwake_open(NULL, err, sizeof err);
    if (!g_worker)
        die("worker: %s", err);
    g_open_ns = now_ns();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    pgwake_worker *w = g_worker;
    int rc = 0;
    for (;;) {
        if (pgwake_fenced(w)) {
            rc = 1;
            break;
        }
        if (pgwake_should_stop(w))
            break;
        pgwake_task *t = NULL;
        g_claim_start_ns = now_ns();
        int n = pgwake_claim(w, &t);
        int64_t claim = now_ns();
        if (n == PGWAKE_STOPPED)
            continue;
        if (n < 0) {
            fprintf(stderr, "wake worker: claim: %s\n", pgwake_last_error(w));
            rc = 1;
            break;
        }
        if (n == 0) {
            if (pgwake_wait_idle(w) == PGWAKE_WAKE_STOP) {
                rc = pgwake_fenced(w) ? 1 : 0;
                break;
            }
            g_woke_ns = now_ns();
            continue;
        }
        if (!record(w, t, claim)) {
            pgwake_fail(w, t, "unable to write the bench output file", true);
        } else if (pgwake_complete(w, t, NULL) == PGWAKE_ERROR) {
            fprintf(stderr, "wake worker: complete: %s\n", pgwake_last_error(w));
            pgwake_task_free(t);
            rc = 1;
            break;
        }
        pgwake_task_free(t);
        pgwake_poll_wake(w);
    }
    pgwake_close(w);
    return rc;
}

/* ---------------------------------------------------------------- produce */

struct claim_line {
    int64_t claim, main, open, woke, claim_start;
    int pid, first;
    char wid[80];
    bool seen;
};

/* read_claims parses OUTFILE into lines[0..total); returns how many seqs were seen. */
static int read_claims(const char *path, struct claim_line *lines, int total)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int seen = 0;
    char buf[512];
    for (int i = 0; i < total; i++)
        lines[i].seen = false;
    while (fgets(buf, sizeof buf, f)) {
        long seq;
        struct claim_line l;
        if (sscanf(buf, "%ld %" SCNd64 " %" SCNd64 " %" SCNd64 " %d %79s %d %" SCNd64 " %" SCNd64,
                   &seq, &l.claim, &l.main, &l.open, &l.pid, l.wid, &l.first, &l.woke,
                   &l.claim_start) != 9)
            continue;
        if (seq < 0 || seq >= total || lines[seq].seen)
            continue;
        l.seen = true;
        lines[seq] = l;
        seen++;
    }
    fclose(f);
    return seen;
}

static int mode_produce(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    if (!o.out)
        die("produce: -o OUTFILE is required");
    int total = o.warmup + o.n;
    int64_t *commit = calloc((size_t)total, sizeof *commit);
    int64_t *sent = calloc((size_t)total, sizeof *sent);
    struct claim_line *lines = calloc((size_t)total, sizeof *lines);
    if (!commit || !sent || !lines)
        die("out of memory");
    PGconn *c = connect_db(o.dsn);
    /* Leftovers of an earlier run must not be claimed in place of ours. */
    {
        const char *p[] = {o.stage};
        PGresult *r = PQexecParams(c, "DELETE FROM pgwake.tasks WHERE stage = $1 AND status = 'pending'",
                                   1, NULL, p, NULL, NULL, 0);
        PQclear(r);
    }
    PGresult *r = PQprepare(c, "ins", "INSERT INTO pgwake.tasks(stage, payload) VALUES ($1, $2::jsonb)",
                            2, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare: %s", PQerrorMessage(c));
    PQclear(r);
    srand((unsigned)getpid());
    int64_t t = mono_ns() + next_gap(o.interval_ms);
    for (int i = 0; i < total; i++) {
        sleep_until_mono(t);
        t += next_gap(o.interval_ms);
        char payload[48];
        snprintf(payload, sizeof payload, "{\"seq\": %d}", i);
        const char *p[] = {o.stage, payload};
        sent[i] = now_ns();
        r = PQexecPrepared(c, "ins", 2, p, NULL, NULL, 0);
        commit[i] = now_ns();
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("insert: %s", PQerrorMessage(c));
        PQclear(r);
    }
    /* Join with what the workers wrote. */
    int64_t deadline = mono_ns() + (int64_t)(o.timeout_s * 1e9);
    int seen;
    while ((seen = read_claims(o.out, lines, total)) < total && mono_ns() < deadline)
        poll(NULL, 0, 50);
    if (seen < total)
        fprintf(stderr, "wake produce: only %d of %d tasks claimed within %.0f s\n", seen, total,
                o.timeout_s);

    /* started_at of every worker (for the cold-start split). */
    r = PQexec(c, "SELECT id, (extract(epoch FROM started_at) * 1e9)::int8 FROM pgwake.workers");
    int nw = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;

    int64_t *lat = calloc((size_t)total, sizeof *lat), *lat_send = calloc((size_t)total, sizeof *lat);
    int64_t *c_reg = calloc((size_t)total, sizeof *lat), *c_exec = calloc((size_t)total, sizeof *lat);
    int64_t *c_open = calloc((size_t)total, sizeof *lat), *c_claim = calloc((size_t)total, sizeof *lat);
    int64_t *w_wake = calloc((size_t)total, sizeof *lat), *w_claim = calloc((size_t)total, sizeof *lat);
    size_t n = 0, ncold = 0, nsplit = 0, nwoken = 0;
    int pids[4096], npids = 0;
    for (int i = o.warmup; i < total; i++) {
        struct claim_line *l = &lines[i];
        if (!l->seen)
            continue;
        lat[n] = l->claim - commit[i];
        lat_send[n++] = l->claim - sent[i];
        bool known = false;
        for (int k = 0; k < npids; k++)
            known = known || pids[k] == l->pid;
        if (!known && npids < 4096)
            pids[npids++] = l->pid;
        /* Woken for this task: the W that ended the wait came after the commit. */
        if (!(l->main > commit[i] && l->first) && l->woke > commit[i] && l->claim_start >= l->woke) {
            w_wake[nwoken] = l->woke - commit[i];
            w_claim[nwoken++] = l->claim - l->claim_start;
        }
        if (l->main > commit[i] && l->first) {
            ncold++;
            int64_t reg = 0;
            for (int k = 0; k < nw; k++)
                if (strcmp(PQgetvalue(r, k, 0), l->wid) == 0)
                    reg = strtoll(PQgetvalue(r, k, 1), NULL, 10);
            if (reg) {
                c_reg[nsplit] = reg - commit[i];
                c_exec[nsplit] = l->main - reg;
                c_open[nsplit] = l->open - l->main;
                c_claim[nsplit++] = l->claim - l->open;
            }
        }
    }
    PQclear(r);
    char extra[256];
    snprintf(extra, sizeof extra, "label=%s lost=%d cold=%zu woken=%zu pids=%d%s interval_ms=%.0f",
             o.label[0] ? o.label : "-", o.n - (int)n, ncold, nwoken, npids,
             npids >= 4096 ? "+" : "", o.interval_ms);
    char name[96];
    snprintf(name, sizeof name, "%s", o.label[0] ? o.label : "wake");
    report(name, extra, lat, n, NULL);
    snprintf(name, sizeof name, "%s_from_send", o.label[0] ? o.label : "wake");
    report(name, NULL, lat_send, n, NULL);
    if (nwoken) {
        snprintf(name, sizeof name, "%s_commit_to_woken", o.label[0] ? o.label : "wake");
        report(name, NULL, w_wake, nwoken, NULL);
        snprintf(name, sizeof name, "%s_claim_call", o.label[0] ? o.label : "wake");
        report(name, NULL, w_claim, nwoken, NULL);
    }
    if (nsplit) {
        const char *parts[] = {"commit_to_register", "register_to_main", "main_to_open",
                               "open_to_claim"};
        int64_t *arrs[] = {c_reg, c_exec, c_open, c_claim};
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "%s_%s", o.label[0] ? o.label : "wake", parts[k]);
            report(name, NULL, arrs[k], nsplit, NULL);
        }
    }
    PQfinish(c);
    return seen < total ? 3 : 0;
}

/* ---------------------------------------------------------------- listen */

struct listener {
    PGconn *c;
    int64_t *recv;
    int total;
    volatile int got;
};

static void *listen_main(void *arg)
{
    struct listener *L = arg;
    int sock = PQsocket(L->c);
    while (L->got < L->total) {
        struct pollfd p = {.fd = sock, .events = POLLIN};
        if (poll(&p, 1, 30000) <= 0)
            break;
        int64_t t = now_ns();
        if (!PQconsumeInput(L->c))
            break;
        PGnotify *nt;
        while ((nt = PQnotifies(L->c)) != NULL) {
            int seq = atoi(nt->extra);
            if (seq >= 0 && seq < L->total && L->recv[seq] == 0) {
                L->recv[seq] = t;
                L->got++;
            }
            PQfreemem(nt);
        }
    }
    return NULL;
}

static int mode_listen(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    int total = o.warmup + o.n;
    PGconn *prod = connect_db(o.dsn), *lc = connect_db(o.dsn);
    exec_ok(prod, "CREATE TABLE IF NOT EXISTS bench_ping (seq int, at timestamptz DEFAULT now())");
    exec_ok(lc, "LISTEN bench_ping");
    struct listener L = {.c = lc, .total = total};
    L.recv = calloc((size_t)total, sizeof *L.recv);
    int64_t *commit = calloc((size_t)total, sizeof *commit);
    if (!L.recv || !commit)
        die("out of memory");
    pthread_t th;
    if (pthread_create(&th, NULL, listen_main, &L))
        die("pthread_create failed");
    PGresult *r = PQprepare(prod, "ping",
                            "WITH i AS (INSERT INTO bench_ping(seq) VALUES ($1::int) RETURNING seq)"
                            " SELECT pg_notify('bench_ping', seq::text) FROM i",
                            1, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("prepare: %s", PQerrorMessage(prod));
    PQclear(r);
    srand((unsigned)getpid());
    int64_t t = mono_ns() + next_gap(o.interval_ms);
    for (int i = 0; i < total; i++) {
        sleep_until_mono(t);
        t += next_gap(o.interval_ms);
        char s[16];
        snprintf(s, sizeof s, "%d", i);
        const char *p[] = {s};
        r = PQexecPrepared(prod, "ping", 1, p, NULL, NULL, 0);
        commit[i] = now_ns();
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die("ping: %s", PQerrorMessage(prod));
        PQclear(r);
    }
    int64_t deadline = mono_ns() + 5000000000LL;
    while (L.got < total && mono_ns() < deadline)
        poll(NULL, 0, 10);
    if (L.got < total)
        pthread_cancel(th);
    pthread_join(th, NULL);
    int64_t *lat = calloc((size_t)total, sizeof *lat);
    size_t n = 0;
    for (int i = o.warmup; i < total; i++)
        if (L.recv[i])
            lat[n++] = L.recv[i] - commit[i];
    char extra[64];
    snprintf(extra, sizeof extra, "lost=%d", o.n - (int)n);
    report("listen_notify", extra, lat, n, NULL);
    exec_ok(prod, "DROP TABLE bench_ping");
    PQfinish(prod);
    PQfinish(lc);
    return 0;
}

/* ---------------------------------------------------------------- roundtrip */

static int mode_roundtrip(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    PGconn *c = connect_db(o.dsn);
    int64_t *v = calloc((size_t)o.n, sizeof *v);
    if (!v)
        die("out of memory");
    PGresult *r;
    for (int i = 0; i < 50; i++)
        PQclear(PQexec(c, "SELECT 1"));
    for (int i = 0; i < o.n; i++) {
        int64_t t0 = mono_ns();
        r = PQexec(c, "SELECT 1");
        v[i] = mono_ns() - t0;
        PQclear(r);
    }
    report("select1", NULL, v, (size_t)o.n, NULL);

    pgwake_options opt;
    pgwake_options_init(&opt);
    opt.dsn = o.dsn;
    opt.stage = "bench_rt";
    opt.drain = true;
    char err[256];
    pgwake_worker *w = pgwake_open(&opt, err, sizeof err);
    if (!w)
        die("roundtrip: %s", err);
    PQclear(PQexec(c, "DELETE FROM pgwake.tasks WHERE stage = 'bench_rt'"));
    int64_t *vc = calloc((size_t)o.n, sizeof *v), *ve = calloc((size_t)o.n, sizeof *v),
            *vd = calloc((size_t)o.n, sizeof *v);
    if (!vc || !ve || !vd)
        die("out of memory");
    for (int i = -20; i < o.n; i++) {
        r = PQexec(c, "INSERT INTO pgwake.tasks(stage, payload) VALUES ('bench_rt', '{}')");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("insert: %s", PQerrorMessage(c));
        PQclear(r);
        pgwake_task *t = NULL;
        int64_t t0 = mono_ns();
        int got = pgwake_claim(w, &t);
        int64_t t1 = mono_ns();
        if (got != 1)
            die("roundtrip: claim returned %d: %s", got, pgwake_last_error(w));
        int rc = pgwake_complete(w, t, NULL);
        int64_t t2 = mono_ns();
        if (rc != PGWAKE_OK)
            die("roundtrip: complete returned %d", rc);
        pgwake_task_free(t);
        pgwake_task *none = NULL;
        int64_t t3 = mono_ns();
        got = pgwake_claim(w, &none);
        int64_t t4 = mono_ns();
        if (got != 0)
            die("roundtrip: empty claim returned %d", got);
        if (i >= 0) {
            vc[i] = t1 - t0;
            vd[i] = t2 - t1;
            ve[i] = t4 - t3;
        }
    }
    report("claim_task", NULL, vc, (size_t)o.n, NULL);
    report("claim_empty", NULL, ve, (size_t)o.n, NULL);
    report("complete", NULL, vd, (size_t)o.n, NULL);

    /* The first claim of a new backend: catalog caches and PL/pgSQL compiled. */
    const char *wid[] = {pgwake_worker_id(w)};
    int m = o.n / 10 < 20 ? 20 : o.n / 10;
    for (int i = 0; i < m; i++) {
        PQclear(PQexec(c, "INSERT INTO pgwake.tasks(stage, payload) SELECT 'bench_rt', '{}'"
                          " FROM generate_series(1, 2)"));
        PGconn *nc = connect_db(o.dsn);
        int64_t t0 = mono_ns();
        r = PQexecParams(nc, "SELECT id FROM pgwake.claim('bench_rt', $1, '5 minutes', 1)", 1, NULL,
                         wid, NULL, NULL, 0);
        int64_t t1 = mono_ns();
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            die("first claim: %s", PQerrorMessage(nc));
        PQclear(r);
        r = PQexecParams(nc, "SELECT id FROM pgwake.claim('bench_rt', $1, '5 minutes', 1)", 1, NULL,
                         wid, NULL, NULL, 0);
        int64_t t2 = mono_ns();
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            die("second claim: %s", PQerrorMessage(nc));
        PQclear(r);
        PQfinish(nc);
        vc[i] = t1 - t0;
        ve[i] = t2 - t1;
    }
    report("claim_first_of_backend", NULL, vc, (size_t)m, NULL);
    report("claim_second_of_backend", NULL, ve, (size_t)m, NULL);
    PQclear(PQexec(c, "UPDATE pgwake.tasks SET status = 'done' WHERE stage = 'bench_rt'"));
    pgwake_close(w);
    PQfinish(c);
    return 0;
}

/* ---------------------------------------------------------------- spawn */

static int64_t run_wait(const char *path, char *const argv[])
{
    int64_t t0 = mono_ns();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        execv(path, argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int64_t t = mono_ns() - t0;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("%s did not exit 0", path);
    return t;
}

static int mode_spawn(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    int64_t *v = calloc((size_t)o.n, sizeof *v);
    if (!v)
        die("out of memory");
    char *tr[] = {"/bin/true", NULL};
    for (int i = 0; i < 10; i++)
        run_wait("/bin/true", tr);
    for (int i = 0; i < o.n; i++)
        v[i] = run_wait("/bin/true", tr);
    report("exec_true", NULL, v, (size_t)o.n, NULL);

    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        die("readlink /proc/self/exe failed");
    self[len] = '\0';
    char *noop[] = {self, "noop", NULL};
    for (int i = 0; i < 10; i++)
        run_wait(self, noop);
    for (int i = 0; i < o.n; i++)
        v[i] = run_wait(self, noop);
    report("exec_bench_binary", NULL, v, (size_t)o.n, NULL);

    for (int i = 0; i < o.n + 10; i++) {
        int64_t t0 = mono_ns();
        PGconn *c = PQconnectdb(o.dsn);
        int64_t t1 = mono_ns();
        if (PQstatus(c) != CONNECTION_OK)
            die("connect: %s", PQerrorMessage(c));
        PQfinish(c);
        if (i >= 10)
            v[i - 10] = t1 - t0;
    }
    report("new_connection", NULL, v, (size_t)o.n, NULL);
    return 0;
}

/* ---------------------------------------------------------------- burst */

struct burster {
    const char *dsn, *stage, *sql;
    int n;
    int64_t done_ns;
    char err[256];
};

static void *burst_main(void *arg)
{
    struct burster *b = arg;
    PGconn *c = PQconnectdb(b->dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(b->err, sizeof b->err, "%s", PQerrorMessage(c));
        return NULL;
    }
    if (!PQenterPipelineMode(c)) {
        snprintf(b->err, sizeof b->err, "pipeline mode: %s", PQerrorMessage(c));
        return NULL;
    }
    const char *p[] = {b->stage};
    enum { CHUNK = 200 };
    for (int sent = 0; sent < b->n;) {
        int k = b->n - sent < CHUNK ? b->n - sent : CHUNK;
        for (int i = 0; i < k; i++) {
            if (!PQsendQueryParams(c, b->sql, 1, NULL, p, NULL, NULL, 0) ||
                !PQpipelineSync(c)) {
                snprintf(b->err, sizeof b->err, "send: %s", PQerrorMessage(c));
                return NULL;
            }
        }
        /* each query: its result, NULL, then the sync's PGRES_PIPELINE_SYNC */
        for (int i = 0; i < k; i++) {
            for (;;) {
                PGresult *r = PQgetResult(c);
                if (!r)
                    continue;
                ExecStatusType st = PQresultStatus(r);
                PQclear(r);
                if (st == PGRES_PIPELINE_SYNC)
                    break;
                if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                    snprintf(b->err, sizeof b->err, "notify: %s", PQerrorMessage(c));
                    return NULL;
                }
            }
        }
        sent += k;
    }
    b->done_ns = mono_ns();
    PQexitPipelineMode(c);
    PQfinish(c);
    return NULL;
}

static int mode_burst(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o);
    struct burster *b = calloc((size_t)o.conns, sizeof *b);
    pthread_t *th = calloc((size_t)o.conns, sizeof *th);
    if (!b || !th)
        die("out of memory");
    int64_t t0 = mono_ns();
    for (int i = 0; i < o.conns; i++) {
        b[i].dsn = o.dsn;
        b[i].stage = o.stage;
        b[i].sql = o.tasks ? "INSERT INTO pgwake.tasks(stage, payload) VALUES ($1, '{}')"
                           : "SELECT pg_notify('pgwake_task', $1)";
        b[i].n = o.n / o.conns + (i < o.n % o.conns);
        if (pthread_create(&th[i], NULL, burst_main, &b[i]))
            die("pthread_create failed");
    }
    int64_t last = t0;
    for (int i = 0; i < o.conns; i++) {
        pthread_join(th[i], NULL);
        if (b[i].err[0])
            die("burst: %s", b[i].err);
        if (b[i].done_ns > last)
            last = b[i].done_ns;
    }
    double secs = (double)(last - t0) / 1e9;
    printf("RESULT bench=burst_send what=%s n=%d conns=%d seconds=%.3f rate=%.0f\n",
           o.tasks ? "tasks" : "notifications", o.n, o.conns, secs, o.n / secs);
    fprintf(stderr, "burst: %d %s from %d connections in %.3f s (%.0f/s)\n", o.n,
            o.tasks ? "task inserts" : "notifications", o.conns, secs, o.n / secs);
    return 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: wake worker|produce|listen|roundtrip|spawn|burst|noop [options]");
    const char *m = argv[1];
    if (strcmp(m, "noop") == 0)
        return 0;
    if (strcmp(m, "pause") == 0) {
        /* keep libpq really loaded, as any program using it has it */
        if (PQlibVersion() <= 0)
            return 1;
        pause();
        return 0;
    }
    if (strcmp(m, "worker") == 0)
        return mode_worker(argc, argv);
    if (strcmp(m, "produce") == 0)
        return mode_produce(argc, argv);
    if (strcmp(m, "listen") == 0)
        return mode_listen(argc, argv);
    if (strcmp(m, "roundtrip") == 0)
        return mode_roundtrip(argc, argv);
    if (strcmp(m, "spawn") == 0)
        return mode_spawn(argc, argv);
    if (strcmp(m, "burst") == 0)
        return mode_burst(argc, argv);
    die("unknown mode %s", m);
}
