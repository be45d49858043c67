/* clock.h: the one monotonic millisecond clock every local deadline uses. */
#ifndef PGWAKE_CLOCK_H
#define PGWAKE_CLOCK_H

#include <stdint.h>

int64_t mono_ms(void);

#endif
