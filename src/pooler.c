/* pooler.c: is the daemon's session its own?
 *
 * Behind a proxy (pg_backend_pid() differs from the pid libpq was given) the
 * daemon's connection may be pooled. A session pool pins one server session
 * to a client for its life; a transaction (or statement) pool hands a server
 * session to whoever asks between transactions, which loses LISTEN and lets
 * the host and maintenance locks wander. So between two statements of ours,
 * a second client of the same DSN asks for its server pid: seeing ours, or
 * ours changing, proves the session is shared. PgBouncer reuses the most
 * recently released server first, so one round almost always proves it; three
 * rounds cover a busy pool. A session pool can never show either.
 *
 * Blocking, at (re)connect only: one statement on a direct connection;
 * behind a proxy a second connection bounded by our connect_timeout and a few
 * quick statements, all given up after PROBE_MS (then the connection is
 * dropped and the next attempt asks again). */
#include "pooler.h"
#include "clock.h"

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

enum { ROUNDS = 3, PROBE_MS = 5000 };

/* wait_io waits for c's socket until deadline_ms (CLOCK_MONOTONIC). */
static bool wait_io(PGconn *c, short events, long long deadline_ms)
{
    long long left = deadline_ms - mono_ms();
    struct pollfd p = {.fd = PQsocket(c), .events = events};
    return left > 0 && poll(&p, 1, (int)left) == 1;
}

/* backend_pid asks c for its server pid, giving up at deadline_ms: a pool
 * with no server free makes a client wait (PgBouncer's query_wait_timeout is
 * 2 minutes), and this runs on the daemon's loop. -1 on failure. */
static int backend_pid(PGconn *c, long long deadline_ms)
{
    if (!PQsendQuery(c, "SELECT pg_catalog.pg_backend_pid()"))
        return -1;
    int f;
    while ((f = PQflush(c)) == 1)
        if (!wait_io(c, POLLOUT, deadline_ms))
            return -1;
    int pid = -1;
    while (f == 0) {
        while (PQisBusy(c))
            if (!wait_io(c, POLLIN, deadline_ms) || !PQconsumeInput(c))
                return -1; /* the caller drops a connection left mid-query */
        PGresult *r = PQgetResult(c);
        if (!r)
            break;
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            pid = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    return pid;
}

/* rounds: up to ROUNDS of (ours, theirs, ours) server pids, ours first seen
 * as mine_pid. */
static PoolVerdict rounds(PGconn *mine, PGconn *other, int mine_pid, long long deadline, char *why,
                          size_t whylen)
{
    for (int i = 0; i < ROUNDS; i++) {
        int before = i ? backend_pid(mine, deadline) : mine_pid;
        int theirs = before < 0 ? -1 : backend_pid(other, deadline);
        int after = theirs < 0 ? -1 : backend_pid(mine, deadline);
        if (before < 0 || theirs < 0 || after < 0) {
            snprintf(why, whylen, "pg_backend_pid() failed or took over %d ms: %s", PROBE_MS,
                     PQerrorMessage(before < 0 || after < 0 ? mine : other));
            return POOL_UNKNOWN;
        }
        if (theirs == before || theirs == after) {
            snprintf(why, whylen, "another client got our server session (pid %d)", theirs);
            return POOL_SHARED;
        }
        if (before != after) {
            snprintf(why, whylen, "our server session changed between statements (pid %d, then %d)",
                     before, after);
            return POOL_SHARED;
        }
    }
    return POOL_SESSION;
}

/* pooler_probe runs first on a new connection, before any session setting
 * or lock could land in a shared server session. POOL_SESSION for a direct
 * connection (one statement) or a session pool; POOL_SHARED with why saying
 * what was seen; POOL_UNKNOWN when the probe itself failed (why says how). */
PoolVerdict pooler_probe(PGconn *mine, const char *dsn, char *why, size_t whylen)
{
    long long deadline = mono_ms() + PROBE_MS;
    int pid = backend_pid(mine, deadline);
    if (pid < 0) {
        snprintf(why, whylen, "pg_backend_pid() failed or took over %d ms: %s", PROBE_MS,
                 PQerrorMessage(mine));
        return POOL_UNKNOWN;
    }
    if (pid == PQbackendPID(mine))
        return POOL_SESSION; /* no proxy */
    /* The same pooler as ours (a multi-host DSN may list several): keys after
     * dbname override the DSN's, the connect_timeout too, since this connect
     * blocks the loop (libpq takes 2 s at least). */
    const char *addr = PQhostaddr(mine);
    char timeout[16];
    long long left_s = (deadline - mono_ms()) / 1000;
    snprintf(timeout, sizeof timeout, "%lld", left_s < 2 ? 2 : left_s);
    const char *keys[] = {"dbname", "connect_timeout", "fallback_application_name",
                          "host", "port", addr && *addr ? "hostaddr" : NULL, NULL};
    const char *vals[] = {dsn, timeout, "pgwake-pool-probe", PQhost(mine), PQport(mine), addr, NULL};
    PGconn *other = PQconnectdbParams(keys, vals, 1);
    PoolVerdict v;
    if (PQstatus(other) != CONNECTION_OK) {
        snprintf(why, whylen, "second connection failed: %s", PQerrorMessage(other));
        v = POOL_UNKNOWN;
    } else {
        v = rounds(mine, other, pid, deadline, why, whylen);
    }
    PQfinish(other);
    if (v == POOL_SESSION)
        log_info("the database connection goes through a proxy in session pool mode: a session "
                 "of our own, as LISTEN and the advisory locks need");
    return v;
}
