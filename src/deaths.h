/* deaths.h: recent worker deaths on any host (pgwake.workers in state dead)
 * with their reason and last lines, for GET /deaths, the page and `pgwake
 * status`; and recording a local worker's last lines at its death. */
#ifndef PGWAKE_DEATHS_H
#define PGWAKE_DEATHS_H

#include <jansson.h>
#include <libpq-fe.h>

#include "mustcheck.h"

/* $1 = how many, within the last hour: id, stage, host, reason, ago_s,
 * last_lines, pid. Works on a schema without last_lines too (null). */
extern const char deaths_sql[];
/* $1 = worker id, $2 = its last lines */
extern const char deaths_record_sql[];

json_t *deaths_json(PGresult *r) MUSTCHECK;

#endif
