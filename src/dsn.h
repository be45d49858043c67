/* dsn.h: the connection string's source (SPEC section 6's order), its check
 * and the scrubbing of its password out of messages. libpq's own messages
 * about a string it cannot parse echo its pieces, so none is ever shown. */
#ifndef PGWAKE_DSN_H
#define PGWAKE_DSN_H

#include <stdbool.h>
#include <stddef.h>

#include "mustcheck.h"

typedef const char *(*GetenvFn)(const char *name);

typedef enum {
    DSN_SRC_OPT,          /* -d */
    DSN_SRC_ENV,          /* PGWAKE_DSN */
    DSN_SRC_CONF,         /* dsn in the configuration */
    DSN_SRC_DATABASE_URL, /* DATABASE_URL */
    DSN_SRC_POSTGRES_URL, /* POSTGRES_URL */
    DSN_SRC_DEFAULT,      /* "": libpq's PG* variables */
    DSN_SRC__COUNT
} DsnSource;

const char *dsn_pick(const char *opt_d, const char *conf_dsn, GetenvFn env);
const char *dsn_pick_source(const char *opt_d, const char *conf_dsn, GetenvFn env,
                            DsnSource *src);
const char *dsn_source_name(DsnSource src);
bool dsn_check(const char *dsn, char *why, size_t n) MUSTCHECK;
bool dsn_resolve(const char *opt_d, const char *conf_dsn, GetenvFn env, const char **out, char *err,
                 size_t n) MUSTCHECK;
void dsn_scrub(const char *dsn, char *msg, size_t n);

#endif
