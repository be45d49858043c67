/*
 * worker.c - opening and closing a worker: configuration from options and the
 * PGWAKE_* environment, self-registration of workers not spawned by pgwake,
 * the main connection's interruptible backoff wait, and the small accessors.
 */
#include "libworker/internal.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
    DEFAULT_LEASE_MS = 300000,    /* pgwake.claim's own default, 5 minutes */
    DEFAULT_HEARTBEAT_MS = 30000, /* SPEC section 7 */
    MAX_CLAIM_BATCH = PGWK_MAX_CLAIM_BATCH,
    CLOSE_WAIT_MS = 5000,         /* how long pgwake_close() tries to reach the database */
};

void pgwake_options_init(pgwake_options *o)
{
    memset(o, 0, sizeof *o);
    o->log_level = PGWAKE_LOG_WARN;
    o->connect_wait = -1;
}

/*
 * parse_seconds reads "30", "0.5" or "2.25" without strtod, whose decimal point
 * follows the locale a worker program may have set. Returns milliseconds, or -1.
 */
static long long parse_seconds(const char *s)
{
    long long ms = 0, scale = 1000;
    const char *p = s;
    if (!s || !*s)
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        ms = ms * 10 + (*p - '0') * 1000;
        if (ms > 100000000000LL)
            return -1;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            scale /= 10;
            ms += (*p - '0') * scale;
        }
    }
    return *p == '\0' && p != s ? ms : -1;
}

/* seconds_ms picks an option (> 0), else an environment variable, else a default. */
static long long seconds_ms(const WkLog *lg, double opt, const char *env, long long dflt)
{
    if (opt > 0)
        return (long long)(opt * 1000 + 0.5);
    const char *v = getenv(env);
    if (!v || !*v)
        return dflt;
    long long ms = parse_seconds(v);
    if (ms > 0)
        return ms;
    wk_warn(lg, "%s=\"%s\" is not a number of seconds (using %lld.%03lld)", env, v, dflt / 1000,
            dflt % 1000);
    return dflt;
}

/* claim_batch picks the option (> 0), else PGWAKE_CLAIM_BATCH (the stage's claim_batch), else 1. */
static int claim_batch(const WkLog *lg, int opt)
{
    if (opt > 0)
        return opt > MAX_CLAIM_BATCH ? MAX_CLAIM_BATCH : opt;
    const char *v = getenv("PGWAKE_CLAIM_BATCH");
    if (!v || !*v)
        return 1;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < 1 || n > MAX_CLAIM_BATCH) {
        wk_warn(lg, "PGWAKE_CLAIM_BATCH=\"%s\" is not a count from 1 to %d (using 1)", v,
                MAX_CLAIM_BATCH);
        return 1;
    }
    return (int)n;
}

/* wake_fd_from_env returns the wake fd the daemon gave us, or -1 (drain mode). */
static int wake_fd_from_env(const WkLog *lg)
{
    const char *v = getenv("PGWAKE_WAKE_FD");
    if (!v || !*v)
        return -1;
    char *end;
    long fd = strtol(v, &end, 10);
    struct stat st;
    if (*end || fd < 0 || fd > 65535 || fstat((int)fd, &st) != 0) {
        wk_warn(lg, "PGWAKE_WAKE_FD=%s is not an open file descriptor (working in drain mode)", v);
        return -1;
    }
    return (int)fd;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

void pgwk_set_error(pgwake_worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait_ended says whether the current wait for the database must end now. */
static bool wait_ended(pgwake_worker *w)
{
    switch (w->wait_mode) {
    case WAIT_CLAIM:
        return pgwake_should_stop(w);
    case WAIT_FINISH:
        return w->wake.eof || atomic_load(&w->stop_requested) || atomic_load(&w->fenced);
    case WAIT_CLOSE:
        return false;
    }
    return true;
}

/*
 * main_sleep is the main connection's backoff wait. It watches the wake fd
 * meanwhile, so that a stop byte or the daemon going away ends the wait for a
 * database that may not come back; a `W` does not end it.
 */
static bool main_sleep(void *arg, unsigned ms)
{
    pgwake_worker *w = arg;
    long long until = now_ms() + ms;
    for (;;) {
        if (wait_ended(w))
            return false;
        long long left = until - now_ms();
        if (left <= 0)
            return true;
        if (w->wait_mode == WAIT_CLOSE) {
            poll(NULL, 0, (int)left); /* the stop flags are set by now: sleep plainly */
            continue;
        }
        pgwk_wake_wait(&w->wake, (int)left);
    }
}

bool pgwk_connect(pgwake_worker *w)
{
    if (w->conn.pg)
        return true;
    long max = w->wait_mode == WAIT_CLOSE ? CLOSE_WAIT_MS : -1;
    if (pgwk_conn_connect(&w->conn, max))
        return true;
    pgwk_set_error(w, "unable to connect: %s", w->conn.error);
    return false;
}

/* register_self calls pgwake.register_worker for a worker pgwake did not spawn. */
static bool register_self(pgwake_worker *w, char *err, size_t errlen)
{
    char host[256] = "localhost", pid[24], timeout[40];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    /* the default 90 s timeout assumes the default 30 s heartbeat: keep 3 beats */
    unsigned long long tmo = 3ULL * w->hb_interval_ms;
    snprintf(timeout, sizeof timeout, "%llu milliseconds", tmo < 90000 ? 90000 : tmo);
    const char *params[4] = {w->stage, host, pid, timeout};
    bool lost;
    PGresult *r = pgwk_conn_exec(&w->conn, "SELECT pgwake.register_worker($1, $2, $3::int, $4::interval)",
                                 4, params, &lost);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        char msg[256];
        pgwk_conn_result_error(&w->conn, r, msg, sizeof msg);
        snprintf(err, errlen, "unable to register the worker for stage %s: %s", w->stage, msg);
        PQclear(r);
        return false;
    }
    w->worker_id = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    w->self_registered = w->worker_id != NULL;
    if (!w->worker_id)
        snprintf(err, errlen, "out of memory");
    return w->worker_id != NULL;
}

/* configure fills w from opts and the environment. */
static bool configure(pgwake_worker *w, const pgwake_options *o, char *err, size_t errlen)
{
    const char *stage = o->stage ? o->stage : getenv("PGWAKE_STAGE");
    const char *dsn = o->dsn ? o->dsn : getenv("PGWAKE_DSN");
    const char *id = o->worker_id ? o->worker_id : getenv("PGWAKE_WORKER_ID");
    if (!stage || !*stage) {
        snprintf(err, errlen, "no stage: set PGWAKE_STAGE (pgwake sets it for its workers)");
        return false;
    }
    w->log.level = o->log_level;
    w->stage = strdup(stage);
    w->dsn = dup_or_null(dsn);
    w->worker_id = dup_or_null(id);
    if (!w->stage || (dsn && *dsn && !w->dsn) || (id && *id && !w->worker_id)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    long long lease = seconds_ms(&w->log, o->lease_seconds, "PGWAKE_LEASE_SECONDS", DEFAULT_LEASE_MS);
    snprintf(w->lease, sizeof w->lease, "%lld.%03lld seconds", lease / 1000, lease % 1000);
    long long hb = seconds_ms(&w->log, o->heartbeat_interval, "PGWAKE_HEARTBEAT_INTERVAL",
                              DEFAULT_HEARTBEAT_MS);
    w->hb_interval_ms = hb > 86400000 ? 86400000 : (unsigned)hb;
    w->claim_batch = claim_batch(&w->log, o->claim_batch);
    int fd = o->drain ? -1 : wake_fd_from_env(&w->log);
    if (!pgwk_wake_init(&w->wake, fd, &w->log)) {
        snprintf(err, errlen, "unable to create an eventfd: %s", strerror(errno));
        return false;
    }
    pgwk_conn_init(&w->conn, w->dsn, "main", &w->log, main_sleep, w);
    return true;
}

/*
 * first_connect makes the first connection as opts.connect_wait says. By
 * default a spawned worker opens even when the database is away: its claims
 * wait for it (and a stop byte ends that wait with a clean exit 0), while a
 * self-registering worker needs the connection now.
 */
static bool first_connect(pgwake_worker *w, const pgwake_options *o, char *err, size_t errlen)
{
    long max = o->connect_wait > 0 ? (long)(o->connect_wait * 1000) : 0;
    w->wait_mode = WAIT_CLAIM;
    if (pgwk_conn_connect(&w->conn, max))
        return true;
    if (o->connect_wait < 0 && w->worker_id)
        return true; /* the claims reconnect */
    snprintf(err, errlen, "unable to connect to the database: %s", w->conn.error);
    return false;
}

pgwake_worker *pgwake_open(const pgwake_options *opts, char *err, size_t errlen)
{
    pgwake_options defaults;
    char scratch[8];
    if (!err || errlen == 0) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    if (!opts) {
        pgwake_options_init(&defaults);
        opts = &defaults;
    }
    pgwake_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->wake.fd = w->wake.intr_fd = -1;
    atomic_init(&w->fenced, false);
    atomic_init(&w->stop_requested, false);
    if (!configure(w, opts, err, errlen) || !first_connect(w, opts, err, errlen) ||
        (!w->worker_id && !register_self(w, err, errlen)))
        goto fail;
    if (!pgwk_heartbeat_start(&w->hb, w->dsn, w->worker_id, w->hb_interval_ms, &w->fenced,
                              &w->wake, &w->log)) {
        snprintf(err, errlen, "unable to start the heartbeat thread: %s", strerror(errno));
        goto fail;
    }
    wk_info(&w->log, "worker %s of stage %s started (%s, lease %s, heartbeat every %u ms)",
            w->worker_id, w->stage, w->wake.fd >= 0 ? "wake fd" : "drain mode", w->lease,
            w->hb_interval_ms);
    return w;
fail:
    pgwake_close(w);
    return NULL;
}

/* exit_registration calls pgwake.worker_exited for a self-registered worker. */
static int exit_registration(pgwake_worker *w)
{
    w->wait_mode = WAIT_CLOSE;
    const char *params[1] = {w->worker_id};
    for (int tries = 0; tries < 3; tries++) {
        if (!pgwk_connect(w))
            break;
        bool lost;
        PGresult *r = pgwk_conn_exec(&w->conn, "SELECT pgwake.worker_exited($1)", 1, params, &lost);
        if (lost)
            continue;
        bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            pgwk_conn_result_error(&w->conn, r, w->error, sizeof w->error);
        PQclear(r);
        if (ok)
            return PGWAKE_OK;
        break;
    }
    wk_warn(&w->log, "unable to end the registration of worker %s: %s (its heartbeat timeout "
                     "will)", w->worker_id, w->error);
    return PGWAKE_ERROR;
}

int pgwake_close(pgwake_worker *w)
{
    if (!w)
        return PGWAKE_OK;
    int rc = PGWAKE_OK;
    pgwk_heartbeat_stop(&w->hb);
    if (w->self_registered)
        rc = exit_registration(w);
    pgwk_conn_close(&w->conn);
    pgwk_wake_close(&w->wake);
    free(w->held);
    free(w->stage);
    free(w->worker_id);
    free(w->dsn);
    free(w);
    return rc;
}

bool pgwk_held_add(pgwake_worker *w, long long id)
{
    if (w->nheld == w->heldcap) {
        size_t cap = w->heldcap ? w->heldcap * 2 : 8;
        long long *p = realloc(w->held, cap * sizeof *p);
        if (!p)
            return false;
        w->held = p;
        w->heldcap = cap;
    }
    w->held[w->nheld++] = id;
    return true;
}

void pgwk_held_remove(pgwake_worker *w, long long id)
{
    for (size_t i = 0; i < w->nheld; i++) {
        if (w->held[i] == id) {
            w->held[i] = w->held[--w->nheld];
            return;
        }
    }
}

void pgwake_set_outcome_hook(pgwake_worker *w, pgwake_outcome_fn fn, void *arg)
{
    w->outcome = fn;
    w->outcome_arg = arg;
}

bool pgwake_fenced(const pgwake_worker *w)
{
    return atomic_load(&((pgwake_worker *)w)->fenced);
}

void pgwake_request_stop(pgwake_worker *w)
{
    atomic_store(&w->stop_requested, true);
    pgwk_wake_interrupt(&w->wake);
}

bool pgwake_should_stop(pgwake_worker *w)
{
    return w->wake.stop || w->wake.eof || atomic_load(&w->stop_requested) ||
           atomic_load(&w->fenced);
}

const char *pgwake_worker_id(const pgwake_worker *w)
{
    return w->worker_id;
}

const char *pgwake_stage(const pgwake_worker *w)
{
    return w->stage;
}

bool pgwake_is_spawned(const pgwake_worker *w)
{
    return !w->self_registered;
}

const char *pgwake_last_error(const pgwake_worker *w)
{
    return w->error;
}
