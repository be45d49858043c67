/*
 * wake.h - the worker's side of the wake-fd protocol (SPEC section 5): bytes
 * from the daemon (`W` work, `S` stop, end of file: daemon gone) and the `I`
 * (idle) byte to it, plus an eventfd that interrupts a blocked wait.
 */
#ifndef PGWK_WAKE_H
#define PGWK_WAKE_H

#include <stdbool.h>

#include "libworker/log.h"

typedef struct WkWake {
    int fd;             /* the wake socket, -1 in drain mode (used by the main thread only) */
    int intr_fd;        /* eventfd: written by pgwake_request_stop() and on fencing */
    unsigned long wseq; /* `W` bytes received so far */
    bool stop : 1;      /* `S` received: stop after the current task */
    bool eof : 1;       /* end of file or error: the daemon is gone */
    const WkLog *log;   /* borrowed from the worker */
} WkWake;

/* pgwk_wake_init takes over fd (-1: drain mode) and creates the eventfd. */
bool pgwk_wake_init(WkWake *k, int fd, const WkLog *log);

/* pgwk_wake_close closes both fds. */
void pgwk_wake_close(WkWake *k);

/* pgwk_wake_poll consumes every pending byte without blocking. */
void pgwk_wake_poll(WkWake *k);

/*
 * pgwk_wake_wait blocks up to timeout_ms (< 0: no limit) until a byte, end of
 * file or the eventfd arrives, and consumes what arrived. Returns true when
 * something arrived, false on a timeout.
 */
bool pgwk_wake_wait(WkWake *k, int timeout_ms);

/* pgwk_wake_send_idle writes `I`; a daemon that is gone sets eof. */
void pgwk_wake_send_idle(WkWake *k);

/* pgwk_wake_interrupt wakes a blocked wait; async-signal-safe, any thread. */
void pgwk_wake_interrupt(const WkWake *k);

/* pgwk_wake_interrupted says whether pgwk_wake_interrupt() was called. */
bool pgwk_wake_interrupted(const WkWake *k);

#endif
