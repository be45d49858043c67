/*
 * testworker.c - the integration tests' worker: each task's JSON payload says
 * what to do, and TESTWORKER_LOG (when set) receives one line per event.
 *
 * Payload keys (all optional, combinable; applied in this order):
 *   "alloc_mb": N          first hold N MiB of resident memory (memory_limit tests)
 *   "sleep_ms": N          work for N ms first (default 0)
 *   "hang": true           then raise(SIGSTOP): a real hang (no heartbeats, alive)
 *   "stop_in_tx": true     then, on a connection of its own: BEGIN, complete the
 *                          task and enqueue the "fanout" follow-ups, and
 *                          raise(SIGSTOP) before COMMIT: a worker stopped inside
 *                          its own transaction, holding its task's row lock
 *   "signal": N            then raise signal N
 *   "exit": CODE           then exit CODE without completing
 *   "crash_attempts": K    hang/signal/exit only while attempts <= K (default: always),
 *                          so a retried task can succeed
 *   "fail": "msg"          fail the task with msg; "retry": bool (default true)
 *   "fanout": {"stage": "s", "count": K, "payload": {...}}
 *                          complete with K follow-up tasks to stage s
 * Anything else (or a payload that is not an object) completes the task.
 *
 * Log lines (one O_APPEND write each, so concurrent workers never interleave):
 *   start <worker_id> <pid>
 *   claim <task_id> <attempts> <lease_token> <worker_id> <pid>
 *   complete <task_id> <lease_token> <ok|fenced|error|stopped> <worker_id>
 *   fail <task_id> <lease_token> <ok|fenced|error|stopped> <worker_id>
 *   exit <worker_id> <code>
 *
 * Options: --exit-code N (exit N at once: crash-loop tests), --drain (ignore
 * the wake fd), --stage S, --dsn DSN, -v (library debug log on stderr).
 * Exit codes: 0 told to stop or drained, 1 error, 3 fenced (declared dead).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "pgwake/worker.h"

enum { EXIT_FENCED = 3 };

/* Test worker state, passed to the handler and the outcome hook. */
typedef struct TestWorker {
    int log_fd;            /* TESTWORKER_LOG, or -1 */
    const char *worker_id; /* for log lines; "-" until known */
} TestWorker;

/* tlog appends one line to TESTWORKER_LOG with a single write(). */
static void tlog(const TestWorker *tw, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tlog(const TestWorker *tw, const char *fmt, ...)
{
    char line[512];
    if (tw->log_fd < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(tw->log_fd, line, (size_t)n) != n)
        fprintf(stderr, "testworker: unable to write the log: %s\n", strerror(errno));
}

static char *volatile hog_keep; /* the "alloc_mb" memory, held for the process's life */

static void sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * die_now ends the process with code, as a crash would: the task is neither
 * completed nor failed. A spawned worker closes the library first (that only
 * stops the heartbeat thread and closes connections: the daemon still sees a
 * crash), so that runs under valgrind stay leak-free; a self-registered one
 * must not (close would call worker_exited), so it leaves with _exit().
 */
static void die_now(const TestWorker *tw, pgwake_worker *w, pgwake_task *t, json_t *p, int code)
{
    json_decref(p);
    tlog(tw, "exit %s %d", tw->worker_id, code);
    fflush(NULL);
    if (!pgwake_is_spawned(w))
        _exit(code); /* not exit(): the heartbeat thread is still using libpq */
    pgwake_task_free(t); /* still leased: the daemon releases it when it sees the crash */
    pgwake_close(w);
    if (tw->log_fd >= 0)
        close(tw->log_fd);
    exit(code);
}

/* exec_ok runs one statement of stop_in_tx, false (logged) on an error. */
static bool exec_ok(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "testworker: stop_in_tx: %s", PQerrorMessage(c));
    PQclear(r);
    return ok;
}

/* stop_in_tx: complete (with follow-ups) inside a transaction of its own
 * session, then stop before COMMIT; whoever ends the process rolls it back.
 * If it is ever continued and lives on, it commits. */
static void stop_in_tx(const pgwake_task *t, json_t *p)
{
    const char *dsn = getenv("PGWAKE_DSN");
    PGconn *c = PQconnectdb(dsn ? dsn : "");
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "testworker: stop_in_tx: %s", PQerrorMessage(c));
        PQfinish(c);
        return;
    }
    char id[24], token[24], run[24];
    snprintf(id, sizeof id, "%lld", t->id);
    snprintf(token, sizeof token, "%lld", t->lease_token);
    snprintf(run, sizeof run, "%lld", t->run_id);
    const char *cp[] = {id, token};
    bool ok = exec_ok(c, "BEGIN", 0, NULL) &&
              exec_ok(c, "SELECT pgwake.complete($1::bigint, $2::bigint)", 2, cp);
    json_t *fan = json_object_get(p, "fanout");
    const char *stage = json_string_value(json_object_get(fan, "stage"));
    json_int_t count = json_integer_value(json_object_get(fan, "count"));
    for (json_int_t i = 0; ok && stage && i < count; i++) {
        const char *ep[] = {stage, t->run_id ? run : NULL};
        ok = exec_ok(c, "SELECT pgwake.enqueue($1, '{}'::jsonb, $2::bigint)", 2, ep);
    }
    if (ok)
        raise(SIGSTOP);
    if (ok)
        exec_ok(c, "COMMIT", 0, NULL);
    PQfinish(c);
}

/* crash_steps applies hang, signal and exit, in that order. */
static void crash_steps(const TestWorker *tw, pgwake_worker *w, pgwake_task *t, json_t *p)
{
    if (json_is_true(json_object_get(p, "hang")))
        raise(SIGSTOP);
    if (json_is_true(json_object_get(p, "stop_in_tx")))
        stop_in_tx(t, p);
    json_t *sig = json_object_get(p, "signal");
    if (json_is_integer(sig))
        raise((int)json_integer_value(sig));
    json_t *code = json_object_get(p, "exit");
    if (json_is_integer(code))
        die_now(tw, w, t, p, (int)json_integer_value(code));
}

/* add_fanout queues "fanout" follow-ups; returns an error message or NULL. */
static const char *add_fanout(pgwake_task *t, json_t *fan)
{
    const char *stage = json_string_value(json_object_get(fan, "stage"));
    json_int_t count = json_integer_value(json_object_get(fan, "count"));
    json_t *payload = json_object_get(fan, "payload");
    if (!stage)
        return pgwake_task_errorf(t, "fanout without a stage");
    json_t *empty = payload ? NULL : json_object();
    char *text = json_dumps(payload ? payload : empty, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(empty);
    for (json_int_t i = 0; text && i < count; i++) {
        if (!pgwake_task_add_followup(t, stage, text)) {
            free(text);
            return pgwake_task_errorf(t, "out of memory adding follow-ups");
        }
    }
    free(text);
    return NULL;
}

static const char *handle(pgwake_worker *w, pgwake_task *t, bool *retry, void *arg)
{
    TestWorker *tw = arg;
    tlog(tw, "claim %lld %d %lld %s %ld", t->id, t->attempts, t->lease_token, tw->worker_id,
         (long)getpid());
    json_error_t jerr;
    json_t *p = json_loads(t->payload, JSON_DECODE_ANY, &jerr);
    if (!json_is_object(p)) {
        json_decref(p);
        return NULL; /* nothing to do: complete */
    }
    json_t *mb = json_object_get(p, "alloc_mb");
    if (json_is_integer(mb) && json_integer_value(mb) > 0) {
        size_t n = (size_t)json_integer_value(mb) << 20;
        char *hog = malloc(n);
        if (hog)
            memset(hog, 1, n); /* touched, so resident; freed with the process */
        hog_keep = hog;        /* escapes: the compiler may not drop the allocation */
    }
    json_t *ms = json_object_get(p, "sleep_ms");
    if (json_is_integer(ms))
        sleep_ms(json_integer_value(ms));
    json_t *ca = json_object_get(p, "crash_attempts");
    if (!json_is_integer(ca) || t->attempts <= json_integer_value(ca))
        crash_steps(tw, w, t, p);

    const char *err = NULL;
    json_t *fail = json_object_get(p, "fail");
    json_t *fan = json_object_get(p, "fanout");
    if (json_is_string(fail)) {
        *retry = !json_is_false(json_object_get(p, "retry"));
        err = pgwake_task_errorf(t, "%s", json_string_value(fail));
    } else if (json_is_object(fan)) {
        err = add_fanout(t, fan);
    }
    json_decref(p);
    return err;
}

static const char *status_word(int status)
{
    switch (status) {
    case PGWAKE_OK:
        return "ok";
    case PGWAKE_LOST:
        return "fenced";
    case PGWAKE_STOPPED:
        return "stopped";
    default:
        return "error";
    }
}

/* outcome logs what complete/fail did, as the tests count completions. */
static void outcome(pgwake_worker *w, const pgwake_task *t, bool completed, int status, void *arg)
{
    TestWorker *tw = arg;
    tlog(tw, "%s %lld %lld %s %s", completed ? "complete" : "fail", t->id, t->lease_token,
         status_word(status), tw->worker_id);
}

static void usage(void)
{
    fprintf(stderr, "usage: testworker [--exit-code N] [--drain] [--stage S] [--dsn DSN] [-v]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    pgwake_options o;
    pgwake_options_init(&o);
    int exit_code = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--exit-code") == 0 && i + 1 < argc)
            exit_code = atoi(argv[++i]);
        else if (strcmp(argv[i], "--drain") == 0)
            o.drain = true;
        else if (strcmp(argv[i], "--stage") == 0 && i + 1 < argc)
            o.stage = argv[++i];
        else if (strcmp(argv[i], "--dsn") == 0 && i + 1 < argc)
            o.dsn = argv[++i];
        else if (strcmp(argv[i], "-v") == 0)
            o.log_level = PGWAKE_LOG_DEBUG;
        else
            usage();
    }
    TestWorker tw = {.log_fd = -1, .worker_id = getenv("PGWAKE_WORKER_ID")};
    if (!tw.worker_id)
        tw.worker_id = "-";
    const char *logpath = getenv("TESTWORKER_LOG");
    if (logpath && *logpath) {
        tw.log_fd = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (tw.log_fd < 0)
            fprintf(stderr, "testworker: unable to open %s: %s (not logging)\n", logpath,
                    strerror(errno));
    }
    if (exit_code >= 0) {
        tlog(&tw, "start %s %ld", tw.worker_id, (long)getpid());
        tlog(&tw, "exit %s %d", tw.worker_id, exit_code);
        return exit_code;
    }

    char err[512];
    pgwake_worker *w = pgwake_open(&o, err, sizeof err);
    if (!w) {
        fprintf(stderr, "testworker: %s\n", err);
        tlog(&tw, "exit %s %d", tw.worker_id, 1);
        return 1;
    }
    tw.worker_id = pgwake_worker_id(w);
    tlog(&tw, "start %s %ld", tw.worker_id, (long)getpid());
    pgwake_set_outcome_hook(w, outcome, &tw);
    int rc = pgwake_run(w, handle, &tw);
    int code = rc == PGWAKE_OK ? 0 : rc == PGWAKE_FENCED ? EXIT_FENCED : 1;
    if (rc == PGWAKE_ERROR)
        fprintf(stderr, "testworker: %s\n", pgwake_last_error(w));
    char id[128];
    snprintf(id, sizeof id, "%s", tw.worker_id);
    tw.worker_id = id; /* pgwake_close frees the library's copy */
    pgwake_close(w);
    tlog(&tw, "exit %s %d", tw.worker_id, code);
    if (tw.log_fd >= 0)
        close(tw.log_fd);
    return code;
}
