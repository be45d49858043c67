/* clock.h: the one monotonic millisecond clock every local deadline uses, and
 * the one way a libevent timer is armed for such a deadline. */
#ifndef PGWAKE_CLOCK_H
#define PGWAKE_CLOCK_H

#include <stdint.h>

struct event;

int64_t mono_ms(void);
void timer_arm_at(const char *file, int line, const char *func, struct event *ev, int64_t ms);

/* timer_arm_ms (re)arms ev to fire in ms milliseconds; a failure is fatal
 * (see timer_arm_at), reported at the caller's line like fatal(). */
#define timer_arm_ms(ev, ms) timer_arm_at(__FILE__, __LINE__, __func__, (ev), (ms))

#endif
