/* lockfile.h: the daemon's lock file (one daemon per configuration). */
#ifndef PGWAKE_LOCKFILE_H
#define PGWAKE_LOCKFILE_H

#include <stddef.h>

#include "mustcheck.h"

int lockfile_take(const char *path, char *err, size_t n) MUSTCHECK;

#endif
