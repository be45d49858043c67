/*
 * conn.c - blocking libpq connections for the worker library: connect with
 * keepalives and application_name, reconnect with backoff, classify errors as
 * "connection lost" (retry after reconnecting) or "SQL error" (report).
 */
#include "libworker/conn.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pgwake/worker.h"

enum {
    BACKOFF_FIRST_MS = 100,
    BACKOFF_MAX_MS = 5000,
    LOG_EVERY = 10, /* after the first failure, log every 10th attempt (~50 s) */
};

void pgwk_conn_init(WkConn *c, const char *dsn, const char *name, const WkLog *log,
                    WkSleepFn sleep, void *sleep_arg)
{
    memset(c, 0, sizeof *c);
    c->dsn = dsn;
    c->name = name;
    c->log = log;
    c->sleep = sleep;
    c->sleep_arg = sleep_arg;
    c->backoff_ms = BACKOFF_FIRST_MS;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* one_line copies msg into buf, newlines turned into spaces, trailing ones cut. */
static void one_line(char *buf, size_t len, const char *msg)
{
    size_t n = 0;
    bool space = true; /* drops leading white space too */
    if (!msg || !*msg)
        msg = "unknown error";
    for (const char *p = msg; *p && n + 1 < len; p++) {
        bool ws = *p == '\n' || *p == '\t' || *p == ' ' || *p == '\r';
        if (ws && space)
            continue;
        buf[n++] = ws ? ' ' : *p;
        space = ws;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
}

/*
 * try_connect makes one attempt. Our keepalive settings come before the DSN
 * so that the DSN may override them; application_name comes after it because
 * operators look for "pgwake-worker" in pg_stat_activity.
 */
static bool try_connect(WkConn *c)
{
    const char *keys[9], *vals[9];
    int n = 0;
    keys[n] = "connect_timeout", vals[n++] = "10";
    keys[n] = "keepalives", vals[n++] = "1";
    keys[n] = "keepalives_idle", vals[n++] = "30";
    keys[n] = "keepalives_interval", vals[n++] = "10";
    keys[n] = "keepalives_count", vals[n++] = "3";
    keys[n] = "tcp_user_timeout", vals[n++] = "30000"; /* ms: a silent partition ends in 30 s */
    if (c->dsn && *c->dsn)
        keys[n] = "dbname", vals[n++] = c->dsn;
    keys[n] = "application_name", vals[n++] = "pgwake-worker";
    keys[n] = NULL, vals[n] = NULL;

    c->pg = PQconnectdbParams(keys, vals, 1);
    if (c->pg && PQstatus(c->pg) == CONNECTION_OK)
        return true;
    one_line(c->error, sizeof c->error, c->pg ? PQerrorMessage(c->pg) : "out of memory");
    PQfinish(c->pg);
    c->pg = NULL;
    return false;
}

bool pgwk_conn_connect(WkConn *c, long max_wait_ms)
{
    long long start = now_ms();
    while (!c->pg) {
        if (try_connect(c)) {
            if (c->failures > 0)
                wk_warn(c->log, "%s connection: reconnected after %u failed attempts", c->name,
                        c->failures);
            c->failures = 0;
            c->backoff_ms = BACKOFF_FIRST_MS;
            return true;
        }
        c->failures++;
        bool last = max_wait_ms >= 0 && now_ms() - start + c->backoff_ms > max_wait_ms;
        if (c->failures == 1 || c->failures % LOG_EVERY == 0 || last)
            wk_warn(c->log, "unable to connect (%s connection): %s (%s)", c->name, c->error,
                    last ? "not waiting longer" : "retrying with backoff");
        if (last || !c->sleep(c->sleep_arg, c->backoff_ms))
            return false;
        c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    }
    return true;
}

/*
 * is_lost says whether a failure means the connection is gone: libpq says so,
 * there is no result at all, the server reports a connection exception
 * (class 08), operator intervention by shutdown (57P01..57P03) or a server
 * that is read-only (25006: a demoted primary; the next attempt of a
 * target_session_attrs=read-write DSN finds the new one), or a failed
 * result carries no SQLSTATE at all. Every error the server sends has one;
 * libpq's own "server closed the connection unexpectedly" does not, and comes
 * while PQstatus still says CONNECTION_OK.
 */
static bool is_lost(PGconn *pg, const PGresult *r)
{
    if (!pg || PQstatus(pg) != CONNECTION_OK || !r)
        return true;
    ExecStatusType rs = PQresultStatus(r);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!st)
        return rs == PGRES_FATAL_ERROR || rs == PGRES_BAD_RESPONSE;
    return strncmp(st, "08", 2) == 0 || strcmp(st, "25006") == 0 || strcmp(st, "57P01") == 0 ||
           strcmp(st, "57P02") == 0 || strcmp(st, "57P03") == 0;
}

void pgwk_conn_result_error(const WkConn *c, const PGresult *r, char *err, size_t errlen)
{
    const char *msg = r ? PQresultErrorMessage(r) : NULL;
    if (!msg || !*msg)
        msg = c->pg ? PQerrorMessage(c->pg) : c->error;
    one_line(err, errlen, msg);
}

PGresult *pgwk_conn_exec(WkConn *c, const char *sql, int nparams, const char *const *values,
                         bool *lost)
{
    *lost = false;
    c->transient = false;
    if (!c->pg) {
        *lost = true;
        return NULL;
    }
    PGresult *r = PQexecParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    if (is_lost(c->pg, r)) {
        char msg[256];
        pgwk_conn_result_error(c, r, msg, sizeof msg);
        wk_warn(c->log, "%s connection lost: %s (reconnecting)", c->name, msg);
        snprintf(c->error, sizeof c->error, "%s", msg);
        PQclear(r);
        pgwk_conn_close(c);
        *lost = true;
        return NULL;
    }
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    c->transient = code && (strcmp(code, "40P01") == 0 || strcmp(code, "40001") == 0);
    return r;
}

bool pgwk_conn_simple(WkConn *c, const char *sql, bool *lost, char *err, size_t errlen)
{
    PGresult *r = pgwk_conn_exec(c, sql, 0, NULL, lost);
    bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok && err)
        pgwk_conn_result_error(c, r, err, errlen);
    PQclear(r);
    return ok;
}

void pgwk_conn_close(WkConn *c)
{
    PQfinish(c->pg);
    c->pg = NULL;
}

bool pgwk_conn_exec_pair(WkConn *c, const char *const sql[2], const int nparams[2],
                         const char *const *const values[2], PGresult *r[2], bool *lost)
{
    *lost = false;
    c->transient = false;
    r[0] = r[1] = NULL;
    if (!c->pg) {
        *lost = true;
        return false;
    }
    /* Pipeline mode: both statements and one Sync, so one implicit transaction. */
    bool sent = PQenterPipelineMode(c->pg);
    for (int i = 0; sent && i < 2; i++)
        sent = PQsendQueryParams(c->pg, sql[i], nparams[i], NULL, values[i], NULL, NULL, 0);
    sent = sent && PQpipelineSync(c->pg);
    bool broken = !sent;
    for (int i = 0; !broken && i < 2; i++) {
        r[i] = PQgetResult(c->pg);
        broken = !r[i];
        PGresult *end = broken ? NULL : PQgetResult(c->pg); /* NULL ends each statement */
        if (end) {
            PQclear(end);
            broken = true;
        }
    }
    PGresult *sync = broken ? NULL : PQgetResult(c->pg);
    broken = broken || !sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC;
    PQclear(sync);
    broken = broken || !PQexitPipelineMode(c->pg);
    for (int i = 0; !broken && i < 2; i++) {
        ExecStatusType st = PQresultStatus(r[i]);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_PIPELINE_ABORTED)
            broken = is_lost(c->pg, r[i]);
    }
    if (broken) {
        char msg[256];
        pgwk_conn_result_error(c, r[0] && PQresultStatus(r[0]) == PGRES_FATAL_ERROR ? r[0] : r[1],
                               msg, sizeof msg);
        wk_warn(c->log, "%s connection lost: %s (reconnecting)", c->name, msg);
        snprintf(c->error, sizeof c->error, "%s", msg);
        PQclear(r[0]);
        PQclear(r[1]);
        r[0] = r[1] = NULL;
        pgwk_conn_close(c);
        *lost = true;
        return false;
    }
    for (int i = 0; i < 2; i++) {
        const char *code = PQresultErrorField(r[i], PG_DIAG_SQLSTATE);
        c->transient = c->transient ||
                       (code && (strcmp(code, "40P01") == 0 || strcmp(code, "40001") == 0));
    }
    return PQresultStatus(r[0]) == PGRES_TUPLES_OK && PQresultStatus(r[1]) == PGRES_TUPLES_OK;
}
