/* verify.h: notifications are hints. Before a local worker is stopped because
 * a pgwake_heartbeat payload (or a lost connection) suggests it was declared
 * dead or exited, its row is read afresh; only the row decides. */
#ifndef PGWAKE_VERIFY_H
#define PGWAKE_VERIFY_H

#include <stdint.h>

#include "mustcheck.h"

struct Daemon;
struct Worker;
typedef struct Verify Verify;

Verify *verify_new(struct Daemon *d) MUSTCHECK;
void verify_free(Verify *v);
void verify_worker(Verify *v, struct Worker *w);
void verify_all(Verify *v);
uint64_t verify_refuted(const Verify *v);

#endif
