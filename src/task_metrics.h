/* task_metrics.h: the database's side of GET /metrics, for dashboards and
 * autoscaling: per stage backlog, retrying, leased and dead gauges, the age
 * of the oldest claimable task, completed, dead and failed-attempt counters,
 * and histograms of task duration (enqueue to done) and run time (claim to
 * done). Read by one query per scrape (never while nobody
 * scrapes), started after answering: a scrape shows what the previous one
 * read. */
#ifndef PGWAKE_TASK_METRICS_H
#define PGWAKE_TASK_METRICS_H

#include "mustcheck.h"

struct Daemon;
struct evbuffer;

typedef struct TaskMetrics TaskMetrics;

TaskMetrics *task_metrics_new(struct Daemon *d) MUSTCHECK;
void task_metrics_write(TaskMetrics *m, struct evbuffer *out);
void task_metrics_free(TaskMetrics *m);

#endif
