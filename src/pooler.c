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
 * Blocking, but only behind a proxy and only at (re)connect: a few quick
 * statements, and a second connection bounded by connect_timeout. */
#include "pooler.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

enum { ROUNDS = 3 };

static int backend_pid(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT pg_catalog.pg_backend_pid()");
    int pid = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                  ? atoi(PQgetvalue(r, 0, 0))
                  : -1;
    PQclear(r);
    return pid;
}

/* pooler_probe: POOL_SHARED with why saying what was seen, POOL_SESSION, or
 * POOL_UNKNOWN when the probe itself failed (why says how). */
PoolVerdict pooler_probe(PGconn *mine, const char *dsn, char *why, size_t whylen)
{
    const char *keys[] = {"connect_timeout", "dbname", "fallback_application_name", NULL};
    const char *vals[] = {"5", dsn, "pgwake-pool-probe", NULL};
    PGconn *other = PQconnectdbParams(keys, vals, 1);
    PoolVerdict v = POOL_SESSION;
    if (PQstatus(other) != CONNECTION_OK) {
        snprintf(why, whylen, "second connection failed: %s", PQerrorMessage(other));
        v = POOL_UNKNOWN;
    }
    for (int i = 0; i < ROUNDS && v == POOL_SESSION; i++) {
        int before = backend_pid(mine), theirs = backend_pid(other), after = backend_pid(mine);
        if (before < 0 || theirs < 0 || after < 0) {
            snprintf(why, whylen, "pg_backend_pid() failed: %s",
                     PQerrorMessage(before < 0 || after < 0 ? mine : other));
            v = POOL_UNKNOWN;
        } else if (theirs == before || theirs == after) {
            snprintf(why, whylen, "another client got our server session (pid %d)", theirs);
            v = POOL_SHARED;
        } else if (before != after) {
            snprintf(why, whylen, "our server session changed between statements (pid %d, then %d)",
                     before, after);
            v = POOL_SHARED;
        }
    }
    PQfinish(other);
    if (v == POOL_SESSION)
        log_info("the database connection goes through a proxy in session pool mode: a session "
                 "of our own, as LISTEN and the advisory locks need");
    return v;
}
