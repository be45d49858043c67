/*
 * drain.c: pgwake's side of bench/drain.sh. Queues N no-op tasks, then times
 * W worker processes (each the C library's pgwake_run in drain mode, a
 * handler that returns NULL) from their fork until every one has exited,
 * which it does once a claim finds nothing; checks that all N are done.
 *   drain -d DSN [-n TASKS] [-w WORKERS] [-b CLAIM_BATCH] [-k]
 * Prints: RESULT system=pgwake mode=default|batched tasks=N seconds=S per_s=R
 * -k (bench/sustain.sh): queue nothing, no VACUUM, no check: the workers
 * drain what is pending (stage "drain") until it runs out or they are killed.
 */
#include "benchlib.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pgwake/worker.h"

static const char *noop(pgwake_worker *w, pgwake_task *t, bool *retry, void *arg)
{
    (void)w, (void)t, (void)retry, (void)arg;
    return NULL;
}

static int worker(const char *dsn, int batch)
{
    char err[256];
    pgwake_options o;
    pgwake_options_init(&o);
    o.dsn = dsn;
    o.stage = "drain";
    o.drain = true;
    o.claim_batch = batch;
    pgwake_worker *w = pgwake_open(&o, err, sizeof err);
    if (!w) {
        fprintf(stderr, "drain: %s\n", err);
        return 1;
    }
    int rc = pgwake_run(w, noop, NULL);
    if (rc != PGWAKE_OK)
        fprintf(stderr, "drain: pgwake_run: %s\n", pgwake_last_error(w));
    pgwake_close(w);
    return rc == PGWAKE_OK ? 0 : 1;
}

static long long count(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("%s: %s", sql, PQerrorMessage(c));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

int main(int argc, char **argv)
{
    const char *dsn = NULL;
    int n = 20000, workers = 4, batch = 1, opt;
    bool keep = false;
    while ((opt = getopt(argc, argv, "d:n:w:b:k")) != -1) {
        switch (opt) {
        case 'd': dsn = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'w': workers = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'k': keep = true; break;
        default: die("usage: drain -d DSN [-n TASKS] [-w WORKERS] [-b CLAIM_BATCH] [-k]");
        }
    }
    if (!dsn || n < 1 || workers < 1 || batch < 1)
        die("usage: drain -d DSN [-n TASKS] [-w WORKERS] [-b CLAIM_BATCH] [-k]");
    if (keep) {
        for (int i = 0; i < workers; i++)
            if (fork() == 0)
                _exit(worker(dsn, batch));
        while (wait(NULL) > 0)
            ;
        return 0;
    }
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect: %s", PQerrorMessage(c));
    long long before = count(c, "SELECT count(*) FROM pgwake.tasks WHERE stage = 'drain' AND status = 'done'");
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO pgwake.tasks (stage, payload) SELECT 'drain',"
             " jsonb_build_object('n', g) FROM generate_series(1, %d) g", n);
    exec_ok(c, sql);
    exec_ok(c, "VACUUM ANALYZE pgwake.tasks");
    exec_ok(c, "CHECKPOINT");
    fflush(NULL);
    int64_t t0 = mono_ns();
    for (int i = 0; i < workers; i++) {
        pid_t p = fork();
        if (p < 0)
            die("fork failed");
        if (p == 0)
            _exit(worker(dsn, batch));
    }
    int bad = 0, st;
    while (wait(&st) > 0)
        bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    double secs = (double)(mono_ns() - t0) / 1e9;
    long long done = count(c, "SELECT count(*) FROM pgwake.tasks WHERE stage = 'drain' AND status = 'done'") - before;
    long long left = count(c, "SELECT count(*) FROM pgwake.tasks WHERE stage = 'drain' AND status <> 'done'");
    PQfinish(c);
    if (bad || done != n || left != 0)
        die("%d worker(s) failed; %lld of %d tasks done, %lld not done", bad, done, n, left);
    printf("RESULT system=pgwake mode=%s tasks=%d seconds=%.3f per_s=%.0f workers=%d claim_batch=%d\n",
           batch > 1 ? "batched" : "default", n, secs, n / secs, workers, batch);
    return 0;
}
