/* report.h: what the daemon says about itself, built once and shared: the
 * status JSON (GET /status, `pgwake status`), the Prometheus text (GET
 * /metrics) and the recent runs (GET /runs, `pgwake runs`). */
#ifndef PGWAKE_REPORT_H
#define PGWAKE_REPORT_H

#include <jansson.h>
#include <libpq-fe.h>

#include "mustcheck.h"

struct Daemon;
struct Stage;
struct evbuffer;

/* The one query behind /status, $1 = host: rows (kind, key, value) with kind
 * 'pending' (key = stage, value = claimable tasks now) and 'task' (key =
 * worker id of this host, value = "id,id,..." of its leased tasks). */
extern const char report_status_sql[];

/* Recent runs, newest first, $1 = how many: id, stage, state, total, done,
 * dead, reexecuted, created_at, age_s, finished_at, progress (JSON array of
 * {stage, done, total} in pipeline order). */
extern const char report_runs_sql[];

json_t *report_status(struct Daemon *d, PGresult *res) MUSTCHECK;
json_t *report_stage(struct Stage *s, PGresult *res) MUSTCHECK;
void report_metrics(struct Daemon *d, struct evbuffer *out);
json_t *report_runs(PGresult *res) MUSTCHECK;

#endif
