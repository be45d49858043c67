/*
 * chain.c - completing finished tasks and claiming the next ones in one round
 * trip and one transaction, so a busy worker commits once per round, not
 * twice. The claim comes first (it locks our workers row, then tasks rows: the
 * lock order of every function); a worker declared dead meanwhile claims
 * nothing and its completions are fenced, as apart.
 */
#include "libworker/internal.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * apart is the fallback when the pair did not run: the completions, then the
 * claim, each with its own retries. lost: the pair may have committed.
 */
static int apart(pgwake_worker *w, pgwake_task **done, int ndone, int *status, int n,
                 pgwake_task **tasks, bool lost)
{
    int rc = pgwk_complete_many(w, done, ndone, status, lost);
    if (rc == PGWAKE_STOPPED || pgwake_should_stop(w))
        return lost ? pgwk_claim(w, n, tasks, true) : 0; /* lost: adopt what we may hold */
    return pgwk_claim(w, n, tasks, lost);
}

int pgwk_complete_claim(pgwake_worker *w, pgwake_task **done, int ndone, int *status, int n,
                        pgwake_task **tasks)
{
    pgwk_sort_by_id(done, ndone);
    if (!w->conn.pg || pgwake_fenced(w))
        return apart(w, done, ndone, status, n, tasks, false);
    char nbuf[16], *ids, *tokens;
    if (!pgwk_token_arrays(done, ndone, &ids, &tokens))
        return apart(w, done, ndone, status, n, tasks, false);
    snprintf(nbuf, sizeof nbuf, "%d", n);
    const char *claim[4] = {w->stage, w->worker_id, w->lease, nbuf};
    const char *complete[2] = {ids, tokens};
    const char *const sql[2] = {PGWK_CLAIM_SQL, PGWK_COMPLETE_MANY_SQL};
    const int np[2] = {4, 2};
    const char *const *const values[2] = {claim, complete};
    PGresult *r[2];
    bool lost;
    w->wait_mode = WAIT_FINISH;
    bool ok = pgwk_conn_exec_pair(&w->conn, sql, np, values, r, &lost);
    w->wait_mode = WAIT_CLAIM;
    free(ids);
    free(tokens);
    if (!ok) {
        /* Rolled back (an error, a deadlock) or unknown (lost): do it apart. */
        if (!lost) {
            char msg[256];
            pgwk_conn_result_error(&w->conn, r[0] && PQresultStatus(r[0]) != PGRES_TUPLES_OK
                                                 ? r[0] : r[1], msg, sizeof msg);
            wk_info(&w->log, "complete+claim rolled back (%s): doing them apart", msg);
        }
        PQclear(r[0]);
        PQclear(r[1]);
        return apart(w, done, ndone, status, n, tasks, lost);
    }
    pgwk_complete_statuses(r[1], ndone, status);
    pgwk_settle(w, done, ndone, status);
    int got = pgwk_take_rows(w, r[0], n, tasks);
    PQclear(r[0]);
    PQclear(r[1]);
    w->last_claim_empty = got == 0;
    return got;
}
