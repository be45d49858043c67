/* conn_opts.h: the daemon's libpq connection parameters: the DSN, plus TCP
 * keepalives and tcp_user_timeout where the DSN sets none, with its host list
 * rotated so that a reconnect after a lost or hung host tries the next one. */
#ifndef PGWAKE_CONN_OPTS_H
#define PGWAKE_CONN_OPTS_H

#include <stdbool.h>
#include <libpq-fe.h>

enum { CONN_OPTS_MAX = 64 };

typedef struct ConnOpts {
    const char *keys[CONN_OPTS_MAX + 1]; /* NULL-terminated, for PQconnectStartParams */
    const char *vals[CONN_OPTS_MAX + 1];
    int expand;                          /* expand_dbname argument */
    PQconninfoOption *parsed;            /* owns the DSN's values */
    char *rotated[3];                    /* host, hostaddr, port lists after rotation */
} ConnOpts;

/* The server's side of the same: a session of a partitioned daemon must end
 * too, or its advisory locks (host, maintenance) stay held. Run first on
 * every connection; PostgreSQL ignores these on unix sockets. */
#define CONN_OPTS_SERVER_SQL                                                                   \
    "SELECT pg_catalog.set_config('tcp_keepalives_idle', '5', false),"                        \
    " pg_catalog.set_config('tcp_keepalives_interval', '5', false),"                           \
    " pg_catalog.set_config('tcp_keepalives_count', '3', false),"                              \
    " pg_catalog.set_config('tcp_user_timeout', '20000', false)"

void conn_opts_build(ConnOpts *co, const char *dsn, unsigned first_host);
void conn_opts_free(ConnOpts *co);
bool conn_opts_must_reconnect(const char *sqlstate);

#endif
