/* memwatch.h: RSS sampling of workers of stages with a memory_limit. */
#ifndef PGWAKE_MEMWATCH_H
#define PGWAKE_MEMWATCH_H

#include <stdint.h>
#include <sys/types.h>

#include "mustcheck.h"

struct Daemon;
typedef struct MemWatch MemWatch;

MemWatch *memwatch_new(struct Daemon *d) MUSTCHECK;
void memwatch_kick(MemWatch *mw);
void memwatch_free(MemWatch *mw);
int64_t proc_rss_bytes(pid_t pid) MUSTCHECK;

#endif
