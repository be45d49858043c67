/* clock.c: see clock.h. */
#include "clock.h"

#include <event2/event.h>
#include <time.h>

#include "log.h"

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* timer_arm_at arms ev for ms from now, at once when ms is negative (a
 * deadline already past). event_add fails on a timer only when libevent
 * cannot grow its timer heap, and an unarmed timer leaves its owner waiting
 * for ever (a worker never killed, a reconnect never tried), so the daemon
 * exits as for a bug, and its supervisor restarts it. */
void timer_arm_at(const char *file, int line, const char *func, struct event *ev, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000 * 1000)};
    if (event_add(ev, &tv) != 0)
        log_fatal_at(file, line, func, "unable to arm a %lld ms timer (event_add failed)",
                     (long long)ms);
}
