/* maint.h: heartbeat deadlines of local workers, the maintenance lock and
 * expire_leases() at its deadlines, dead-worker and database-down alerts. */
#ifndef PGWAKE_MAINT_H
#define PGWAKE_MAINT_H

#include <stdbool.h>

#include "mustcheck.h"

struct Daemon;
struct Worker;
typedef struct Maint Maint;

Maint *maint_new(struct Daemon *d) MUSTCHECK;
void maint_free(Maint *m);
void maint_conn_up(Maint *m);
void maint_conn_down(Maint *m);
void maint_on_ready(Maint *m);
void maint_on_down(Maint *m);
void maint_alert_dead(Maint *m, const struct Worker *w);
const char *maint_holder_info(const Maint *m);
void maint_worker_started(Maint *m, struct Worker *w);
void maint_rearm_local(Maint *m);
void maint_remote_change(Maint *m);
bool maint_holder(const Maint *m);

#endif
