/* backoff.h: a stage's restart throttle (exponential backoff with jitter) and
 * its bounded crash tally ("N crashes within T"); pure, clock and RNG injected. */
#ifndef PGWAKE_BACKOFF_H
#define PGWAKE_BACKOFF_H

#include <stdint.h>

/* The delay grows base, 2*base, 4*base ... up to max; see backoff_next. */
typedef struct Backoff {
    int64_t base_ms; /* restart_delay: no delay is ever shorter */
    int64_t max_ms;  /* restart_delay_max: no delay is ever longer */
    int64_t cur_ms;  /* upper bound of the next delay */
} Backoff;

/* A random source: returns 32 uniformly random bits from its state. */
typedef uint32_t (*BackoffRandFn)(void *rng);

void backoff_init(Backoff *b, int64_t base_ms, int64_t max_ms);
void backoff_set_limits(Backoff *b, int64_t base_ms, int64_t max_ms);
int64_t backoff_next(Backoff *b, BackoffRandFn rand_fn, void *rng);
void backoff_reset(Backoff *b);
uint32_t backoff_xorshift32(void *state);

#define TALLY_MAX 64 /* crashes remembered: a max_restarts above it can never trip */

/* The last TALLY_MAX crash times (monotonic ms), oldest overwritten first. */
typedef struct CrashTally {
    int64_t t_ms[TALLY_MAX]; /* ring of crash times */
    int n;                   /* entries in use, at most TALLY_MAX */
    int head;                /* slot the next crash goes to */
} CrashTally;

void tally_add(CrashTally *t, int64_t now_ms);
int tally_count_within(const CrashTally *t, int64_t now_ms, int64_t window_ms);
void tally_clear(CrashTally *t);

#endif
