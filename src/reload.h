/* reload.h: applying a reloaded configuration to a running daemon. */
#ifndef PGWAKE_RELOAD_H
#define PGWAKE_RELOAD_H

struct Daemon;

void daemon_reload(struct Daemon *d);

#endif
