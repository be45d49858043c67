/* metrics.c: fixed-bucket histograms. Buckets are fixed at build time so an
 * observation is a short scan and two additions: cheap enough for the wake
 * path, and every daemon exposes the same `le` labels. */
#include "metrics.h"

#include <math.h>
#include <time.h>

/* From half a millisecond (a W sent within the same loop pass) to 10 s (the
 * database was slow or away): the Prometheus default set, shifted down. */
const double hist_bounds[HIST_NBOUNDS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

/* hist_observe counts one observation; a negative or non-finite value (a
 * clock oddity) is counted as 0 so the count always matches the calls. */
void hist_observe(Histogram *h, double seconds)
{
    if (!isfinite(seconds) || seconds < 0)
        seconds = 0;
    int i = 0;
    while (i < HIST_NBOUNDS && seconds > hist_bounds[i])
        i++;
    h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

/* hist_cumulative returns the observations <= hist_bounds[bucket] (Prometheus
 * buckets are cumulative); bucket HIST_NBOUNDS is +Inf, i.e. the count. */
uint64_t hist_cumulative(const Histogram *h, int bucket)
{
    uint64_t n = 0;
    for (int i = 0; i <= bucket && i <= HIST_NBOUNDS; i++)
        n += h->buckets[i];
    return n;
}

/* metrics_now is a monotonic clock in seconds with sub-millisecond
 * resolution, for latencies below mono_ms()'s millisecond. */
double metrics_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
