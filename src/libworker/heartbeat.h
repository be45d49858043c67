/*
 * heartbeat.h - the heartbeat thread: pgwake.heartbeat(worker_id) every
 * interval on its own connection for the worker's whole life, idle included;
 * a result of -1 fences the worker.
 */
#ifndef PGWK_HEARTBEAT_H
#define PGWK_HEARTBEAT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "libworker/conn.h"
#include "libworker/log.h"
#include "libworker/wake.h"

typedef struct WkHeartbeat {
    pthread_t thread;          /* valid while running */
    pthread_mutex_t mu;        /* guards quit */
    pthread_cond_t cond;       /* signalled when quit is set */
    bool quit;                 /* set by the main thread to end the thread */
    bool running;              /* the thread was started (main thread only) */
    unsigned interval_ms;      /* between two heartbeats */
    const char *worker_id;     /* borrowed from the worker */
    atomic_bool *fenced;       /* the worker's fenced flag, set here */
    const WkWake *wake;        /* to interrupt the main thread when fenced */
    const WkLog *log;          /* borrowed from the worker */
    WkConn conn;               /* the thread's own connection */
} WkHeartbeat;

/*
 * pgwk_heartbeat_start starts the thread; it heartbeats at once, then every
 * interval_ms. Returns false (errno set) when the thread cannot be created.
 */
bool pgwk_heartbeat_start(WkHeartbeat *hb, const char *dsn, const char *worker_id,
                          unsigned interval_ms, atomic_bool *fenced, const WkWake *wake,
                          const WkLog *log);

/* pgwk_heartbeat_stop ends the thread (after its current query) and joins it. */
void pgwk_heartbeat_stop(WkHeartbeat *hb);

#endif
