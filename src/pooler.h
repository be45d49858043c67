/* pooler.h: tells a session pool from a transaction pool in front of the
 * daemon's connection (LISTEN and session advisory locks need a session). */
#ifndef PGWAKE_POOLER_H
#define PGWAKE_POOLER_H

#include <stddef.h>
#include <libpq-fe.h>

typedef enum { POOL_SESSION, POOL_SHARED, POOL_UNKNOWN } PoolVerdict;

PoolVerdict pooler_probe(PGconn *mine, const char *dsn, char *why, size_t whylen);

#endif
