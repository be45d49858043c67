/* verify.c: re-reading local workers' rows. Any role that can connect can
 * NOTIFY pgwake_heartbeat, '<id> dead', and notifications sent while the
 * daemon was disconnected are lost: so a hint only marks the worker for a
 * read, and after every reconnect all local workers are read. A row saying
 * dead or exited for a worker whose process is alive and which pgwake did
 * not end means someone with the right to (pg_cron, another daemon, an
 * operator) declared it: the worker is stopped and its slot freed. A row
 * still alive refutes the hint (counted). One read in flight at a time;
 * workers marked meanwhile go in the next, so a flood of forged payloads
 * costs one query per round trip, not one per payload. */
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

#define VERIFY_MAX_IDS 256 /* per read; more wait for the next */

struct Verify {
    Daemon *d;
    bool inflight : 1;
    uint64_t refuted; /* hints the row contradicted */
};

static bool verifiable(const Worker *w)
{
    return w->id[0] && w->state != WK_REGISTERING && w->state != WK_EXITED && !w->declared_dead &&
           !w->stop_by_us;
}

static void kick(Verify *v);

static void apply_row(Verify *v, Worker *w, const char *state)
{
    bool hinted = w->verify_hinted;
    w->verify_due = w->verify_hinted = false;
    if (!verifiable(w))
        return;
    if (strcmp(state, "dead") == 0 || strcmp(state, "exited") == 0) {
        char why[64];
        snprintf(why, sizeof why, "its row says %s", state);
        worker_declared(w, why);
    } else if (hinted) {
        v->refuted++;
        wlog_warn(w, "a notification said it ended, its row says %s: hint ignored", state);
    }
}

static void read_cb(void *arg, PGresult *res)
{
    Verify *v = arg;
    Daemon *d = v->d;
    v->inflight = false;
    if (!res)
        return; /* connection lost: every worker is read again after the reconnect */
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("unable to read local workers' rows: %s", PQresultErrorMessage(res));
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        Worker *w = daemon_worker_by_id(d, PQgetvalue(res, i, 0));
        if (w && w->verify_due && w->verify_sent)
            apply_row(v, w, PQgetvalue(res, i, 1));
    }
    /* Rows not found (pruned, or never committed) decide nothing. */
    for (int s = 0; s < d->nstages; s++)
        for (Worker *w = d->stages[s]->workers; w; w = w->next)
            if (w->verify_sent)
                w->verify_sent = w->verify_due = w->verify_hinted = false;
    kick(v);
}

/* Sends one read for the workers marked due, unless one is in flight. */
static void kick(Verify *v)
{
    Daemon *d = v->d;
    if (v->inflight || !db_ready(d->db))
        return;
    char *ids = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&ids, &len);
    if (!f)
        return;
    int n = 0;
    for (int s = 0; s < d->nstages; s++)
        for (Worker *w = d->stages[s]->workers; w && n < VERIFY_MAX_IDS; w = w->next)
            if (w->verify_due && verifiable(w)) {
                fprintf(f, "%s%s", n++ ? "\n" : "", w->id);
                w->verify_sent = true;
            }
    fclose(f);
    const char *p[] = {ids};
    /* A plain read: it waits on no row lock, whoever holds one. */
    if (n)
        v->inflight = db_query(d->db, "SELECT w.id, w.state FROM pgwake.workers w"
                                      " WHERE w.id = ANY (pg_catalog.string_to_array($1, E'\\n'))",
                               1, p, 0, read_cb, v);
    free(ids);
}

/* verify_worker: a notification says w ended; read its row before acting. */
void verify_worker(Verify *v, Worker *w)
{
    if (!verifiable(w))
        return;
    w->verify_due = w->verify_hinted = true;
    kick(v);
}

/* verify_all reads every local worker's row: after a reconnect, when the
 * notifications of the time away are lost. */
void verify_all(Verify *v)
{
    Daemon *d = v->d;
    v->inflight = false; /* a read of the old connection is gone with it */
    for (int s = 0; s < d->nstages; s++)
        for (Worker *w = d->stages[s]->workers; w; w = w->next) {
            w->verify_sent = false;
            if (verifiable(w))
                w->verify_due = true;
        }
    kick(v);
}

uint64_t verify_refuted(const Verify *v) { return v->refuted; }

/* verify_new prepares the reader; it queries only when asked. */
Verify *verify_new(Daemon *d)
{
    Verify *v = calloc(1, sizeof *v);
    if (v)
        v->d = d;
    return v;
}

void verify_free(Verify *v)
{
    if (!v)
        return;
    db_cancel_arg(v->d->db, v);
    free(v);
}
