/*
 * task.c - claiming tasks (single and batch), the tasks' memory and their
 * follow-ups. A claim whose connection broke may have committed; the retry
 * therefore first adopts the leases the database says are ours.
 */
#include "libworker/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char PGWK_CLAIM_SQL[] =
    "SELECT id, run_id, payload, attempts, lease_token"
    " FROM pgwake.claim($1, $2, $3::interval, $4::int)";

/*
 * Tasks leased to us that this process does not hold: what a claim that
 * committed after its connection broke handed us. Direct table access: with
 * a least-privilege worker role that cannot read pgwake.tasks, adoption is
 * skipped (see pgwake_claim in worker.h and docs/worker-protocol.md).
 */
static const char ADOPT_SQL[] =
    "SELECT id, run_id, payload, attempts, lease_token FROM pgwake.tasks"
    " WHERE lease_owner = $1 AND stage = $2 AND status = 'leased'"
    " AND id <> ALL ($3::bigint[]) ORDER BY id LIMIT $4::int";

static long long ll_field(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* task_new builds a task from one row of PGWK_CLAIM_SQL/ADOPT_SQL. */
static pgwake_task *task_new(pgwake_worker *w, const PGresult *r, int row)
{
    pgwake_task *t = calloc(1, sizeof *t);
    pgwake_task_priv *p = calloc(1, sizeof *p);
    char *payload = strdup(PQgetisnull(r, row, 2) ? "null" : PQgetvalue(r, row, 2));
    if (!t || !p || !payload) {
        free(t), free(p), free(payload);
        return NULL;
    }
    p->w = w;
    p->payload = payload;
    t->priv = p;
    t->id = ll_field(r, row, 0);
    t->run_id = ll_field(r, row, 1);
    t->payload = payload;
    t->attempts = (int)ll_field(r, row, 3);
    t->lease_token = ll_field(r, row, 4);
    return t;
}

/*
 * pgwk_take_rows turns a claim result into tasks. A task we cannot allocate stays
 * leased to us and is adopted by a later claim, so nothing is lost.
 */
int pgwk_take_rows(pgwake_worker *w, const PGresult *r, int n, pgwake_task **tasks)
{
    int got = 0;
    for (int i = 0; i < PQntuples(r) && got < n; i++) {
        pgwake_task *t = task_new(w, r, i);
        if (!t || !pgwk_held_add(w, t->id)) {
            pgwake_task_free(t);
            wk_error(&w->log, "out of memory taking task %s (left leased to us)",
                     PQgetvalue(r, i, 0));
            continue;
        }
        tasks[got++] = t;
    }
    return got;
}

/* held_array formats the held-task set as a bigint[] literal; caller frees. */
static char *held_array(const pgwake_worker *w)
{
    size_t len = 3 + w->nheld * 21;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p++ = '{';
    for (size_t i = 0; i < w->nheld; i++)
        p += sprintf(p, "%s%lld", i ? "," : "", w->held[i]);
    *p++ = '}';
    *p = '\0';
    return s;
}

/*
 * adopt returns the tasks leased to us that we do not know of (>= 0), or -1
 * when the connection broke again (try again). An SQL error (e.g. no right to
 * read pgwake.tasks) is logged and treated as "none".
 */
static int adopt(pgwake_worker *w, int n, pgwake_task **tasks)
{
    char nbuf[16], *held = held_array(w);
    if (!held)
        return 0;
    snprintf(nbuf, sizeof nbuf, "%d", n);
    const char *params[4] = {w->worker_id, w->stage, held, nbuf};
    bool lost;
    PGresult *r = pgwk_conn_exec(&w->conn, ADOPT_SQL, 4, params, &lost);
    free(held);
    if (lost)
        return -1;
    int got = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        got = pgwk_take_rows(w, r, n, tasks);
        if (got > 0)
            wk_warn(&w->log, "adopted %d task(s) from a claim cut off by a lost connection", got);
    } else {
        char msg[256];
        pgwk_conn_result_error(&w->conn, r, msg, sizeof msg);
        wk_warn(&w->log, "unable to look for tasks claimed before the connection broke: %s "
                         "(any such lease ends when this worker exits)", msg);
    }
    PQclear(r);
    return got;
}

bool pgwk_claim_begin(pgwake_worker *w)
{
    pgwk_wake_poll(&w->wake); /* a W pending now predates this claim */
    w->claim_wseq = w->wake.wseq;
    w->last_claim_empty = true;
    w->wait_mode = WAIT_CLAIM;
    return !pgwake_should_stop(w);
}

int pgwk_claim(pgwake_worker *w, int n, pgwake_task **tasks, bool maybe_committed)
{
    char nbuf[16];
    snprintf(nbuf, sizeof nbuf, "%d", n);
    const char *params[4] = {w->stage, w->worker_id, w->lease, nbuf};
    int transient = 0;
    for (;;) {
        if (!pgwk_connect(w))
            return PGWAKE_STOPPED;
        if (maybe_committed) {
            int got = adopt(w, n, tasks);
            if (got < 0)
                continue;
            maybe_committed = false;
            if (got > 0) {
                w->last_claim_empty = false;
                return got;
            }
        }
        if (pgwake_fenced(w))
            return 0;
        bool lost;
        PGresult *r = pgwk_conn_exec(&w->conn, PGWK_CLAIM_SQL, 4, params, &lost);
        if (lost) {
            maybe_committed = true;
            continue;
        }
        if (PQresultStatus(r) != PGRES_TUPLES_OK && w->conn.transient && ++transient < 5) {
            /* e.g. a deadlock with our own heartbeat over the workers row */
            wk_info(&w->log, "claim rolled back by a deadlock or serialization failure (retrying)");
            PQclear(r);
            continue;
        }
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            char msg[256];
            pgwk_conn_result_error(&w->conn, r, msg, sizeof msg);
            pgwk_set_error(w, "unable to claim a task of stage %s: %s", w->stage, msg);
            wk_error(&w->log, "%s", w->error);
            PQclear(r);
            return PGWAKE_ERROR;
        }
        int got = pgwk_take_rows(w, r, n, tasks);
        PQclear(r);
        w->last_claim_empty = got == 0;
        return got;
    }
}

int pgwake_claim_batch(pgwake_worker *w, int n, pgwake_task **tasks)
{
    if (n <= 0 || !pgwk_claim_begin(w))
        return 0;
    return pgwk_claim(w, n, tasks, false);
}

int pgwake_claim(pgwake_worker *w, pgwake_task **task)
{
    *task = NULL;
    return pgwake_claim_batch(w, 1, task);
}

bool pgwake_task_add_followup_ex(pgwake_task *t, const char *stage, const char *payload,
                                 int priority, double delay_seconds)
{
    pgwake_task_priv *p = t->priv;
    if (p->nfu == p->fucap) {
        size_t cap = p->fucap ? p->fucap * 2 : 4;
        WkFollowup *fu = realloc(p->fu, cap * sizeof *fu);
        if (!fu)
            return false;
        p->fu = fu;
        p->fucap = cap;
    }
    WkFollowup *f = &p->fu[p->nfu];
    f->stage = strdup(stage);
    f->payload = strdup(payload ? payload : "{}");
    f->priority = priority;
    f->delay_ms = delay_seconds > 0 ? (long long)(delay_seconds * 1000 + 0.5) : 0;
    if (!f->stage || !f->payload) {
        free(f->stage), free(f->payload);
        return false;
    }
    p->nfu++;
    return true;
}

bool pgwake_task_add_followup(pgwake_task *t, const char *stage, const char *payload)
{
    return pgwake_task_add_followup_ex(t, stage, payload, 0, 0);
}

const char *pgwake_task_errorf(pgwake_task *t, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return "error (out of memory formatting the message)";
    free(t->priv->error);
    t->priv->error = msg;
    return msg;
}

void pgwake_task_free(pgwake_task *t)
{
    if (!t)
        return;
    pgwake_task_priv *p = t->priv;
    pgwk_held_remove(p->w, t->id);
    for (size_t i = 0; i < p->nfu; i++) {
        free(p->fu[i].stage);
        free(p->fu[i].payload);
    }
    free(p->fu);
    free(p->error);
    free(p->payload);
    free(p);
    free(t);
}
