/* lockinfo.h: pgwake's advisory locks (host, maintenance) and who holds one:
 * pg_try_advisory_lock is open to every role, so a refusal names the holder. */
#ifndef PGWAKE_LOCKINFO_H
#define PGWAKE_LOCKINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <libpq-fe.h>

/* The lock keys, as SQL bigint expressions ($1 is the host name). */
#define LOCK_KEY_HOST "pg_catalog.hashtextextended('pgwake.host:' || $1, 0)"
#define LOCK_KEY_MAINT "7040119002::bigint" /* an arbitrary constant, shared by every daemon */

/* Columns pid, usename, application_name, client, backend_start of the session
 * holding the advisory lock KEY (pg_locks splits a bigint key into classid, the
 * high 32 bits, and objid, the low ones); COND gates the lookup. Without
 * pg_read_all_stats, PostgreSQL hides client and backend_start of other roles'
 * sessions: those come back NULL. */
#define LOCK_HOLDER_SQL(KEY, COND)                                                                 \
    "SELECT a.pid, a.usename::text, a.application_name, pg_catalog.host(a.client_addr),"          \
    " pg_catalog.to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ')"                            \
    " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"             \
    " WHERE " COND " AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"                \
    " AND l.pid <> pg_catalog.pg_backend_pid()"                                                   \
    " AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d"                               \
    "                    WHERE d.datname = pg_catalog.current_database())"                        \
    " AND l.classid = (((" KEY ") >> 32) & 4294967295)::oid"                                      \
    " AND l.objid = ((" KEY ") & 4294967295)::oid LIMIT 1"

/* One row: got (bool), then the holder's columns (NULL when got or unknown). */
#define LOCK_TRY_SQL(KEY)                                                                          \
    "SELECT g.got, h.* FROM (SELECT pg_catalog.pg_try_advisory_lock(" KEY ") AS got) g"            \
    " LEFT JOIN LATERAL (" LOCK_HOLDER_SQL(KEY, "NOT g.got") ") h ON true"

bool lockinfo_describe(const PGresult *res, int row, int col, char *buf, size_t n);

#endif
