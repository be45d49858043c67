/* worker.h: one supervised worker process: registration, spawn, the wake-fd
 * protocol (I / W / S / EOF), its single deadline timer, stop and reap. */
#ifndef PGWAKE_WORKER_H
#define PGWAKE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <event2/event_struct.h>

#include "log.h"
#include "mustcheck.h"
#include "outlog.h"

struct Stage;

typedef enum {
    WK_REGISTERING, /* register_worker in flight; no process yet */
    WK_STARTING,    /* forked; has not reported idle yet */
    WK_BUSY,        /* W sent (or working); no I since */
    WK_IDLE,        /* reported I with nothing newer to do; idle_timeout running */
    WK_STOPPING,    /* S or a signal sent by pgwake; waiting for the exit */
    WK_EXITED,      /* reaped; its database update is in flight */
    WK__COUNT
} WorkerState;

extern const char *const worker_state_names[WK__COUNT];

typedef struct Worker {
    struct Worker *next;      /* in its stage's list */
    struct Stage *stage;
    char id[128];             /* pgwake.workers.id; empty while registering */
    pid_t pid;                /* also the process group id */
    WorkerState state;
    uint64_t gen;             /* stage generation of its spawn or of its last W */
    uint64_t conf_gen;        /* stage configuration generation it was started with */
    int64_t spawned_ms;       /* monotonic */
    int64_t state_ms;         /* when it entered its state (idle since, stopping since) */
    int64_t hb_deadline_ms;   /* next heartbeat deadline to check (maint) */
    int wake_fd;              /* daemon's end of the socketpair, -1 when closed */
    int out_fd;               /* read end of its stdout+stderr pipe, -1 when closed */
    int exec_fd;              /* exec-status pipe, -1 once known */
    struct event wake_ev, out_ev, exec_ev;
    struct event timer;       /* its next deadline: starting grace, idle, stop_timeout or kill_timeout */
    LineBuf outbuf;           /* line assembly and the last lines, for alerts */
    char reason[160];         /* exit reason for release_worker: "exit 1", "signal 9", "exec: ..." */
    bool stop_by_us : 1;      /* pgwake stopped it: refunded, not a crash (reap) */
    bool cancelled : 1;       /* stopped while registering (register callback) */
    bool exec_failed : 1;     /* exec-status pipe reported an error (reap) */
    bool spawn_short : 1;     /* the child met the daemon's fd shortage before exec: not counted */
    bool term_sent : 1;       /* SIGTERM already sent (timer) */
    bool declared_dead : 1;   /* someone declared it dead in the database (reap) */
    bool rolling : 1;         /* stopped for a rolling restart (stage) */
    bool countable : 1;       /* a crash that counts toward max_restarts (finish) */
    bool hung : 1;            /* stopped past its heartbeat deadline before the verdict (finish) */
    bool hb_inflight : 1;     /* its heartbeat deadline is being read (maint) */
    bool verify_due : 1;      /* its row must be read (verify) */
    bool verify_hinted : 1;   /* ... because a notification said it ended (verify) */
    bool verify_sent : 1;     /* ... in the read in flight (verify) */
} Worker;

#define wlog_info(w, fmt, ...) log_info("%s[%d] " fmt, worker_label(w), (int)(w)->pid, ##__VA_ARGS__)
#define wlog_warn(w, fmt, ...) log_warn("%s[%d] " fmt, worker_label(w), (int)(w)->pid, ##__VA_ARGS__)
#define wlog_debug(w, fmt, ...) log_debug("%s[%d] " fmt, worker_label(w), (int)(w)->pid, ##__VA_ARGS__)

Worker *worker_create(struct Stage *s) MUSTCHECK;
void worker_stop(Worker *w, const char *why);
void worker_kill_now(Worker *w);
bool worker_wake(Worker *w) MUSTCHECK;
void worker_reaped(Worker *w, int status);
void worker_declared_dead(Worker *w);
void worker_declared(Worker *w, const char *why);
void worker_hung(Worker *w);
void worker_retire(Worker *w);
void worker_free_dead(Worker **dead);
const char *worker_label(const Worker *w);
void worker_set_state(Worker *w, WorkerState s);

#endif
