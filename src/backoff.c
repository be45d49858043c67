/* backoff.c: exponential restart backoff with jitter and the bounded crash
 * tally that decides FATAL; no clock and no global RNG, so tests drive both. */
#include "backoff.h"

#include <stddef.h>

/* clamp_limits makes base >= 0 and max >= base, so every later step is total. */
static void clamp_limits(Backoff *b)
{
    if (b->base_ms < 0)
        b->base_ms = 0;
    if (b->max_ms < b->base_ms)
        b->max_ms = b->base_ms;
}

/* backoff_init sets the limits and starts at base_ms; a max below base is
 * raised to base and a negative base becomes 0 (no delay). */
void backoff_init(Backoff *b, int64_t base_ms, int64_t max_ms)
{
    b->base_ms = base_ms;
    b->max_ms = max_ms;
    clamp_limits(b);
    b->cur_ms = b->base_ms;
}

/* backoff_set_limits changes the limits live (a reload) and keeps the current
 * step, clamped into the new [base, max], so a crash loop does not start over. */
void backoff_set_limits(Backoff *b, int64_t base_ms, int64_t max_ms)
{
    b->base_ms = base_ms;
    b->max_ms = max_ms;
    clamp_limits(b);
    if (b->cur_ms < b->base_ms)
        b->cur_ms = b->base_ms;
    if (b->cur_ms > b->max_ms)
        b->cur_ms = b->max_ms;
}

/* uniform returns a value in [0, span] from rand_fn, without modulo bias for
 * spans below 2^32 (multiply-shift) and with negligible bias above. */
static int64_t uniform(int64_t span, BackoffRandFn rand_fn, void *rng)
{
    if (span <= 0)
        return 0;
    if ((uint64_t)span < UINT32_MAX)
        return (int64_t)(((uint64_t)rand_fn(rng) * ((uint64_t)span + 1)) >> 32);
    uint64_t r = (uint64_t)rand_fn(rng) << 32 | rand_fn(rng);
    return (int64_t)(r % ((uint64_t)span + 1));
}

/* backoff_next returns the delay before the next restart, then doubles the
 * step up to max. The delay is "equal jitter" floored at base: uniformly in
 * [max(base, cur/2), cur]. So it is never shorter than restart_delay (the
 * first delay is exactly base) nor longer than restart_delay_max, and from the
 * second crash on, stages that crashed together restart apart. A NULL rand_fn
 * gives the upper bound (deterministic). */
int64_t backoff_next(Backoff *b, BackoffRandFn rand_fn, void *rng)
{
    int64_t hi = b->cur_ms;
    int64_t lo = hi / 2 > b->base_ms ? hi / 2 : b->base_ms;
    int64_t delay = rand_fn ? lo + uniform(hi - lo, rand_fn, rng) : hi;

    b->cur_ms = b->cur_ms > b->max_ms / 2 ? b->max_ms : b->cur_ms * 2;
    if (b->cur_ms < b->base_ms) /* base 0 stays 0 */
        b->cur_ms = b->base_ms;
    return delay;
}

/* backoff_reset goes back to base (a worker ran restart_window or exited 0). */
void backoff_reset(Backoff *b)
{
    b->cur_ms = b->base_ms;
}

/* backoff_xorshift32 is a BackoffRandFn over a uint32_t state, which the
 * caller seeds with any non-zero value (e.g. pid ^ time); a zero state is
 * replaced by a fixed seed because xorshift would stay at zero forever. */
uint32_t backoff_xorshift32(void *state)
{
    uint32_t *s = state;
    uint32_t x = *s ? *s : 2463534242u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* tally_add records a crash at now_ms, overwriting the oldest when full. */
void tally_add(CrashTally *t, int64_t now_ms)
{
    t->t_ms[t->head] = now_ms;
    t->head = (t->head + 1) % TALLY_MAX;
    if (t->n < TALLY_MAX)
        t->n++;
}

/* tally_count_within counts the crashes in the half-open window
 * (now - window, now]: one exactly window_ms old is out. At most TALLY_MAX;
 * a window <= 0 counts nothing. Order of entries does not matter. */
int tally_count_within(const CrashTally *t, int64_t now_ms, int64_t window_ms)
{
    int count = 0;

    if (window_ms <= 0)
        return 0;
    for (int i = 0; i < t->n; i++) {
        int64_t age = now_ms - t->t_ms[i];
        if (age >= 0 && age < window_ms)
            count++;
    }
    return count;
}

/* tally_clear forgets every crash (`pgwake start STAGE`, a changed stage). */
void tally_clear(CrashTally *t)
{
    t->n = 0;
    t->head = 0;
}
