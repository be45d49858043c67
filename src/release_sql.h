/* release_sql.h: the daemon's side of release_sql (SPEC section 7): each stage's
 * statement registered on the database after every connect and reload, failed
 * releases retried at their due time, and the failures kept for /status. */
#ifndef PGWAKE_RELEASE_SQL_H
#define PGWAKE_RELEASE_SQL_H

#include <stdbool.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "config.h"
#include "mustcheck.h"

struct Daemon;
typedef struct ReleaseSql ReleaseSql;

ReleaseSql *release_sql_new(struct Daemon *d) MUSTCHECK;
void release_sql_free(ReleaseSql *r);
bool release_sql_on_connect(ReleaseSql *r) MUSTCHECK;
void release_sql_reload(ReleaseSql *r);
void release_sql_worker_ended(ReleaseSql *r, const char *worker_id);
json_t *release_sql_failures_json(const ReleaseSql *r, const char *stage) MUSTCHECK;
int release_sql_failing(const ReleaseSql *r, const char *stage);
bool release_sql_check(PGconn *c, const char *file, const StageConf *s, char *err,
                       size_t errlen) MUSTCHECK;

#endif
