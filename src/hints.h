/* hints.h: what the daemon does with a notification (SPEC 4: hints, never verdicts). */
#ifndef PGWAKE_HINTS_H
#define PGWAKE_HINTS_H

#include <event2/event.h>

void hints_on_notify(void *arg, const char *channel, const char *payload);
void hints_badlog_cb(evutil_socket_t fd, short what, void *arg);

#endif
