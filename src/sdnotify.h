/* sdnotify.h: systemd's notify protocol (READY=1, STATUS=, STOPPING=1,
 * WATCHDOG=1) as datagrams to $NOTIFY_SOCKET; a no-op without it. */
#ifndef PGWAKE_SDNOTIFY_H
#define PGWAKE_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

bool sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t sd_watchdog_usec(void);

#endif
