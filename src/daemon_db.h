/* daemon_db.h: the daemon's two database sessions (daemon_db.c). */
#ifndef PGWAKE_DAEMON_DB_H
#define PGWAKE_DAEMON_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "mustcheck.h"

bool daemon_db_open(Daemon *d) MUSTCHECK;
bool daemon_db_settled(const Daemon *d, int64_t window_ms);
bool daemon_db_stuck(const Daemon *d, char *why, size_t n);

#endif
