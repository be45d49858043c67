/* notify.h: (channel, payload) of a PostgreSQL notification -> what to wake.
 * Pure and total: any byte string yields a verdict, never a crash. */
#ifndef PGWAKE_NOTIFY_H
#define PGWAKE_NOTIFY_H

#include <stdint.h>

typedef enum { CH_RUN, CH_TASK, CH_HEARTBEAT, CH_WAKE, CH_UNKNOWN, CH__COUNT } Channel;

typedef enum {
    NT_STAGE,  /* wake one stage: msg.stage */
    NT_ALL,    /* wake every stage (pgwake_wake with '*' or empty) */
    NT_WORKER, /* a worker changed state: msg.worker_id, msg.state */
    NT_BAD,    /* unparseable: answer with a recount of every stage */
} NotifyKind;

typedef struct NotifyMsg {
    NotifyKind kind;
    Channel channel;
    char stage[64];      /* NT_STAGE */
    char worker_id[128]; /* NT_WORKER */
    char state[16];      /* NT_WORKER: starting, alive, exited, dead */
    int64_t run_id;      /* pgwake_run only */
} NotifyMsg;

extern const char *const channel_names[CH__COUNT];

NotifyMsg notify_parse(const char *channel, const char *payload);

#endif
