/*
 * finish.c - completing and failing tasks. complete runs in one transaction
 * with the follow-up enqueues, and commits only when pgwake.complete returned
 * true; both calls are retried after a lost connection, which the lease token
 * makes safe. complete_batch completes many tasks in one statement.
 */
#include "libworker/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One statement enqueues every follow-up: parallel arrays unnested in order.
 * Equivalent to one SELECT pgwake.enqueue(stage, payload::jsonb, run_id, ...)
 * per follow-up, in one round trip.
 */
static const char ENQUEUE_SQL[] =
    "SELECT count(pgwake.enqueue(f.stage, f.payload::jsonb, $5::bigint, f.priority,"
    " now() + f.delay_ms * interval '1 millisecond'))"
    " FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])"
    " WITH ORDINALITY AS f(stage, payload, priority, delay_ms, n)";

/* One autocommit statement, one commit for the lot; n says whose answer is whose. */
const char PGWK_COMPLETE_MANY_SQL[] =
    "SELECT f.n, pgwake.complete(f.id, f.token)"
    " FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS f(id, token, n)";

/* Did a complete/fail whose acknowledgement was lost commit? (see retry_outcome)
 * lease_outcome answers the token's holder only: a pgwake_worker role reads no table. */
static const char DONE_SQL[] =
    "SELECT status IN ('done') FROM pgwake.lease_outcome($1, $2)";
static const char FAILED_SQL[] =
    "SELECT status IN ('pending', 'dead') AND last_error IS NOT DISTINCT FROM $3"
    " FROM pgwake.lease_outcome($1, $2)";

/* Buffer for an SQL array literal built element by element. */
typedef struct ArrBuf {
    char *s;       /* the literal, NUL-terminated */
    size_t len;    /* used */
    size_t cap;    /* allocated */
    bool oom;      /* an allocation failed */
} ArrBuf;

static void arr_putc(ArrBuf *a, char c)
{
    if (a->oom)
        return;
    if (a->len + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        char *s = realloc(a->s, cap);
        if (!s) {
            a->oom = true;
            return;
        }
        a->s = s;
        a->cap = cap;
    }
    a->s[a->len++] = c;
    a->s[a->len] = '\0';
}

/* arr_add appends one element, quoted: array literals escape " and \ only. */
static void arr_add(ArrBuf *a, const char *elem)
{
    arr_putc(a, a->len ? ',' : '{');
    arr_putc(a, '"');
    for (const char *p = elem; *p; p++) {
        if (*p == '"' || *p == '\\')
            arr_putc(a, '\\');
        arr_putc(a, *p);
    }
    arr_putc(a, '"');
}

static void arr_end(ArrBuf *a)
{
    if (a->len == 0)
        arr_putc(a, '{');
    arr_putc(a, '}');
}

/* enqueue_followups runs ENQUEUE_SQL inside the open transaction. */
static int enqueue_followups(pgwake_worker *w, const pgwake_task *t, bool *lost)
{
    const pgwake_task_priv *p = t->priv;
    ArrBuf arr[4] = {{0}};
    char num[32], run[24];
    for (size_t i = 0; i < p->nfu; i++) {
        arr_add(&arr[0], p->fu[i].stage);
        arr_add(&arr[1], p->fu[i].payload);
        snprintf(num, sizeof num, "%d", p->fu[i].priority);
        arr_add(&arr[2], num);
        snprintf(num, sizeof num, "%lld", p->fu[i].delay_ms);
        arr_add(&arr[3], num);
    }
    for (int i = 0; i < 4; i++)
        arr_end(&arr[i]);
    snprintf(run, sizeof run, "%lld", t->run_id);
    int rc = PGWAKE_OK;
    if (arr[0].oom || arr[1].oom || arr[2].oom || arr[3].oom) {
        pgwk_set_error(w, "out of memory enqueueing the follow-ups of task %lld", t->id);
        rc = PGWAKE_ERROR;
    } else {
        const char *params[5] = {arr[0].s, arr[1].s, arr[2].s, arr[3].s,
                                 t->run_id ? run : NULL};
        PGresult *r = pgwk_conn_exec(&w->conn, ENQUEUE_SQL, 5, params, lost);
        if (!*lost && PQresultStatus(r) != PGRES_TUPLES_OK) {
            char msg[256];
            pgwk_conn_result_error(&w->conn, r, msg, sizeof msg);
            pgwk_set_error(w, "unable to enqueue the follow-ups of task %lld: %s", t->id, msg);
            rc = PGWAKE_ERROR;
        }
        PQclear(r);
    }
    for (int i = 0; i < 4; i++)
        free(arr[i].s);
    return *lost ? PGWAKE_ERROR : rc;
}

/*
 * call_bool runs a statement returning one boolean: 1 true, 0 false, -1 error
 * (message in w->error, prefixed with what).
 */
static int call_bool(pgwake_worker *w, const char *what, const char *sql, int n,
                     const char *const *params, bool *lost)
{
    PGresult *r = pgwk_conn_exec(&w->conn, sql, n, params, lost);
    if (*lost)
        return -1;
    int v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = !PQgetisnull(r, 0, 0) && PQgetvalue(r, 0, 0)[0] == 't';
    else if (PQresultStatus(r) == PGRES_TUPLES_OK)
        v = 0; /* no row: e.g. the task is gone */
    else {
        char msg[256];
        pgwk_conn_result_error(&w->conn, r, msg, sizeof msg);
        pgwk_set_error(w, "unable to %s: %s", what, msg);
    }
    PQclear(r);
    return v;
}

/* rollback ends a failed transaction; a lost connection has ended it already. */
static void rollback(pgwake_worker *w)
{
    bool lost, transient = w->conn.transient; /* finish() asks about the failure, not this */
    if (w->conn.pg && !pgwk_conn_simple(&w->conn, "ROLLBACK", &lost, NULL, 0) && !lost)
        pgwk_conn_close(&w->conn); /* unknown state: start afresh rather than sit in it */
    w->conn.transient = transient;
}

/* complete_tx is one attempt of pgwake_complete; *lost asks for a retry. */
static int complete_tx(pgwake_worker *w, const pgwake_task *t, const char *result, bool *lost)
{
    char id[24], token[24], msg[256];
    snprintf(id, sizeof id, "%lld", t->id);
    snprintf(token, sizeof token, "%lld", t->lease_token);
    const char *params[3] = {id, token, result};
    /* Without follow-ups one autocommit statement does it: one round trip. */
    if (t->priv->nfu == 0) {
        int ok = call_bool(w, "complete the task", "SELECT pgwake.complete($1, $2, $3::jsonb)", 3,
                           params, lost);
        return ok == 1 ? PGWAKE_OK : ok == 0 ? PGWAKE_LOST : PGWAKE_ERROR;
    }
    if (!pgwk_conn_simple(&w->conn, "BEGIN", lost, msg, sizeof msg)) {
        if (!*lost)
            pgwk_set_error(w, "unable to begin a transaction: %s", msg);
        return PGWAKE_ERROR;
    }
    int ok = call_bool(w, "complete the task", "SELECT pgwake.complete($1, $2, $3::jsonb)", 3,
                       params, lost);
    int rc = ok == 1 ? PGWAKE_OK : ok == 0 ? PGWAKE_LOST : PGWAKE_ERROR;
    if (rc == PGWAKE_OK && t->priv->nfu > 0)
        rc = enqueue_followups(w, t, lost);
    if (rc == PGWAKE_OK && !pgwk_conn_simple(&w->conn, "COMMIT", lost, msg, sizeof msg)) {
        if (!*lost)
            pgwk_set_error(w, "unable to commit the completion of task %lld: %s", t->id, msg);
        rc = PGWAKE_ERROR;
    }
    if (rc != PGWAKE_OK && !*lost)
        rollback(w);
    return rc;
}

/* fail_once is one attempt of pgwake_fail; *lost asks for a retry. */
static int fail_once(pgwake_worker *w, const pgwake_task *t, const char *error, bool retry,
                     bool *lost)
{
    char id[24], token[24];
    snprintf(id, sizeof id, "%lld", t->id);
    snprintf(token, sizeof token, "%lld", t->lease_token);
    const char *params[4] = {id, token, error, retry ? "true" : "false"};
    int ok = call_bool(w, "fail the task", "SELECT pgwake.fail($1, $2, $3, $4::boolean)", 4,
                       params, lost);
    return ok == 1 ? PGWAKE_OK : ok == 0 ? PGWAKE_LOST : PGWAKE_ERROR;
}

/*
 * retry_outcome: a repeat after a lost connection was fenced; if the first
 * attempt committed (the acknowledgement was what got lost), the task is in
 * the state we put it in with our token, and the call did succeed. Best
 * effort: a role that may not read pgwake.tasks keeps PGWAKE_LOST.
 */
static int retry_outcome(pgwake_worker *w, const pgwake_task *t, const char *error)
{
    char id[24], token[24];
    snprintf(id, sizeof id, "%lld", t->id);
    snprintf(token, sizeof token, "%lld", t->lease_token);
    const char *params[3] = {id, token, error};
    bool lost;
    int ok = error ? call_bool(w, "check the task", FAILED_SQL, 3, params, &lost)
                   : call_bool(w, "check the task", DONE_SQL, 2, params, &lost);
    if (ok == 1)
        wk_info(&w->log, "task %lld: the first attempt had committed before the connection "
                         "broke", t->id);
    return ok == 1 ? PGWAKE_OK : PGWAKE_LOST;
}

/* finish drives complete (error == NULL) or fail with reconnects and retries. */
static int finish(pgwake_worker *w, pgwake_task *t, const char *result, const char *error,
                  bool retry)
{
    bool retried = false;
    int rc, transient = 0;
    w->wait_mode = WAIT_FINISH;
    for (;;) {
        if (!pgwk_connect(w)) {
            rc = PGWAKE_STOPPED;
            break;
        }
        bool lost = false;
        w->conn.transient = false;
        rc = error ? fail_once(w, t, error, retry, &lost) : complete_tx(w, t, result, &lost);
        if (rc == PGWAKE_ERROR && !lost && w->conn.transient && ++transient < 5)
            continue; /* rolled back by a deadlock or serialization failure: safe to repeat */
        if (!lost)
            break;
        retried = true;
    }
    w->wait_mode = WAIT_CLAIM;
    if (rc == PGWAKE_LOST && retried)
        rc = retry_outcome(w, t, error);
    if (rc == PGWAKE_LOST)
        pgwk_set_error(w, "task %lld: the lease (token %lld) is no longer ours; nothing changed",
                       t->id, t->lease_token);
    if (rc == PGWAKE_OK || rc == PGWAKE_LOST)
        pgwk_held_remove(w, t->id);
    if (rc == PGWAKE_LOST)
        wk_warn(&w->log, "%s", w->error);
    else if (rc == PGWAKE_ERROR)
        wk_error(&w->log, "%s", w->error);
    return rc;
}

int pgwake_complete(pgwake_worker *w, pgwake_task *t, const char *result_json)
{
    return finish(w, t, result_json, NULL, false);
}

int pgwake_fail(pgwake_worker *w, pgwake_task *t, const char *error, bool retry)
{
    return finish(w, t, NULL, error ? error : "failed", retry);
}

/* by_id orders a batch by task id, so two batches lock their rows in one order. */
static int by_id(const void *a, const void *b)
{
    long long x = (*(pgwake_task *const *)a)->id, y = (*(pgwake_task *const *)b)->id;
    return (x > y) - (x < y);
}

bool pgwk_token_arrays(pgwake_task *const *ts, int n, char **ids, char **tokens)
{
    ArrBuf a = {0}, b = {0};
    char num[24];
    for (int i = 0; i < n; i++) {
        snprintf(num, sizeof num, "%lld", ts[i]->id);
        arr_add(&a, num);
        snprintf(num, sizeof num, "%lld", ts[i]->lease_token);
        arr_add(&b, num);
    }
    arr_end(&a);
    arr_end(&b);
    if (a.oom || b.oom) {
        free(a.s), free(b.s);
        return false;
    }
    *ids = a.s;
    *tokens = b.s;
    return true;
}

/*
 * complete_many_once is one attempt of PGWK_COMPLETE_MANY_SQL over ts[0..n-1]:
 * status[i] becomes PGWAKE_OK or PGWAKE_LOST; *lost asks for a retry.
 */
static int complete_many_once(pgwake_worker *w, pgwake_task **ts, int n, int *status, bool *lost)
{
    char *ids, *tokens;
    for (int i = 0; i < n; i++)
        status[i] = PGWAKE_LOST;
    *lost = false;
    if (!pgwk_token_arrays(ts, n, &ids, &tokens)) {
        pgwk_set_error(w, "out of memory completing %d tasks", n);
        return PGWAKE_ERROR;
    }
    const char *params[2] = {ids, tokens};
    PGresult *r = pgwk_conn_exec(&w->conn, PGWK_COMPLETE_MANY_SQL, 2, params, lost);
    free(ids);
    free(tokens);
    int rc = PGWAKE_OK;
    if (*lost) {
        rc = PGWAKE_ERROR;
    } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char msg[256];
        pgwk_conn_result_error(&w->conn, r, msg, sizeof msg);
        pgwk_set_error(w, "unable to complete %d tasks: %s", n, msg);
        rc = PGWAKE_ERROR;
    } else {
        pgwk_complete_statuses(r, n, status);
    }
    PQclear(r);
    return rc;
}

void pgwk_complete_statuses(const PGresult *r, int n, int *status)
{
    for (int i = 0; i < n; i++)
        status[i] = PGWAKE_LOST;
    for (int row = 0; row < PQntuples(r); row++) {
        long k = strtol(PQgetvalue(r, row, 0), NULL, 10) - 1;
        if (k >= 0 && k < n && PQgetvalue(r, row, 1)[0] == 't')
            status[k] = PGWAKE_OK;
    }
}

void pgwk_sort_by_id(pgwake_task **ts, int n)
{
    qsort(ts, (size_t)n, sizeof *ts, by_id);
}

/* pgwk_settle records each outcome: the held set, the log. */
void pgwk_settle(pgwake_worker *w, pgwake_task *const *ts, int n, const int *status)
{
    for (int i = 0; i < n; i++) {
        if (status[i] == PGWAKE_OK || status[i] == PGWAKE_LOST)
            pgwk_held_remove(w, ts[i]->id);
        if (status[i] == PGWAKE_LOST)
            wk_warn(&w->log, "task %lld: the lease (token %lld) is no longer ours; nothing changed",
                    ts[i]->id, ts[i]->lease_token);
    }
}

int pgwk_complete_many(pgwake_worker *w, pgwake_task **ts, int n, int *status, bool retried)
{
    int *st = malloc((size_t)(n > 0 ? n : 1) * sizeof *st);
    if (!st) {
        pgwk_set_error(w, "out of memory completing %d tasks", n);
        for (int i = 0; i < n; i++)
            status[i] = PGWAKE_ERROR;
        return PGWAKE_ERROR;
    }
    int rc = PGWAKE_OK, transient = 0;
    w->wait_mode = WAIT_FINISH;
    while (n > 0) {
        if (!pgwk_connect(w)) {
            rc = PGWAKE_STOPPED;
            break;
        }
        bool lost;
        w->conn.transient = false;
        rc = complete_many_once(w, ts, n, st, &lost);
        if (rc == PGWAKE_ERROR && !lost && w->conn.transient && ++transient < 5)
            continue; /* rolled back by a deadlock (say with our heartbeat): safe to repeat */
        if (!lost)
            break;
        retried = true;
    }
    w->wait_mode = WAIT_CLAIM;
    for (int i = 0; i < n; i++) {
        status[i] = rc == PGWAKE_OK ? st[i] : rc;
        if (status[i] == PGWAKE_LOST && retried)
            status[i] = retry_outcome(w, ts[i], NULL);
    }
    pgwk_settle(w, ts, n, status);
    if (rc == PGWAKE_ERROR)
        wk_error(&w->log, "%s", w->error);
    free(st);
    return rc;
}

int pgwake_complete_batch(pgwake_worker *w, pgwake_task **tasks, int n, int *status)
{
    /* Follow-ups need a transaction of their own; the rest share one statement. */
    int worst = PGWAKE_OK, m = 0;
    pgwake_task **plain = malloc((size_t)(n > 0 ? n : 1) * sizeof *plain);
    int *st = malloc((size_t)(n > 0 ? n : 1) * sizeof *st);
    if (!plain || !st) {
        free(plain), free(st);
        pgwk_set_error(w, "out of memory completing %d tasks", n);
        return PGWAKE_ERROR;
    }
    for (int i = 0; i < n; i++) {
        if (tasks[i]->priv->nfu == 0) {
            plain[m++] = tasks[i];
            continue;
        }
        status[i] = pgwake_complete(w, tasks[i], NULL);
        if (status[i] == PGWAKE_ERROR || status[i] == PGWAKE_STOPPED)
            worst = status[i];
    }
    pgwk_sort_by_id(plain, m);
    int rc = pgwk_complete_many(w, plain, m, st, false);
    for (int j = 0; j < m; j++)
        for (int i = 0; i < n; i++)
            if (tasks[i] == plain[j])
                status[i] = st[j];
    free(plain);
    free(st);
    return rc != PGWAKE_OK ? rc : worst;
}
