/* memwatch.c: while a stage with memory_limit has workers, samples their RSS
 * every MEMWATCH_MS; a worker above the limit is stopped gracefully (S, then
 * the stop sequence) and replaced by the next recount; each task's first such
 * stop is refunded, later ones count as attempts (pgwake.memory_stop). The timer
 * exists only while such workers do. */
#include "memwatch.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

#define MEMWATCH_MS 2000

struct MemWatch {
    struct Daemon *d;
    struct event ev;
};

/* proc_rss_bytes reads a process's resident set size, or -1. */
int64_t proc_rss_bytes(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long long size, resident;
    int n = fscanf(f, "%lld %lld", &size, &resident);
    fclose(f);
    return n == 2 ? (int64_t)resident * sysconf(_SC_PAGESIZE) : -1;
}

/* note_stop tells the database before the stop: the release that follows
 * refunds only each task's first memory stop (a task that always blows the
 * limit ends dead) and alerts the later ones. */
static void note_stop(Daemon *d, Worker *w, const char *why)
{
    const char *p[] = {w->id, why};
    if (!db_query(d->db, "SELECT pgwake.memory_stop($1, $2)", 2, p, DBQ_RETRY, NULL, NULL))
        wlog_warn(w, "out of memory recording its memory stop");
}

static bool sample(MemWatch *mw)
{
    Daemon *d = mw->d;
    bool any = false;
    for (int i = 0; i < d->nstages; i++) {
        Stage *s = d->stages[i];
        if (!s->conf->memory_limit)
            continue;
        for (Worker *w = s->workers; w; w = w->next) {
            if (w->pid <= 0 || w->state == WK_EXITED || w->state == WK_REGISTERING)
                continue;
            any = true;
            int64_t rss = proc_rss_bytes(w->pid);
            if (rss > s->conf->memory_limit && w->state != WK_STOPPING) {
                char why[96];
                snprintf(why, sizeof why, "RSS %lld MiB above memory_limit %lld MiB",
                         (long long)(rss >> 20), (long long)(s->conf->memory_limit >> 20));
                note_stop(d, w, why);
                worker_stop(w, why);
            }
        }
    }
    return any;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    MemWatch *mw = arg;
    if (sample(mw))
        timer_arm_ms(&mw->ev, MEMWATCH_MS);
}

/* memwatch_kick starts sampling when a worker of a limited stage appears. */
void memwatch_kick(MemWatch *mw)
{
    if (!evtimer_pending(&mw->ev, NULL))
        timer_arm_ms(&mw->ev, MEMWATCH_MS);
}

MemWatch *memwatch_new(struct Daemon *d)
{
    MemWatch *mw = calloc(1, sizeof *mw);
    if (!mw)
        return NULL;
    mw->d = d;
    evtimer_assign(&mw->ev, d->base, tick_cb, mw);
    return mw;
}

void memwatch_free(MemWatch *mw)
{
    if (!mw)
        return;
    event_del(&mw->ev);
    free(mw);
}
