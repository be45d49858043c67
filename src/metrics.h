/* metrics.h: fixed-bucket latency histograms for /metrics (rendered by
 * report.c as a Prometheus histogram); pure data, no allocation. */
#ifndef PGWAKE_METRICS_H
#define PGWAKE_METRICS_H

#include <stdint.h>

#define HIST_NBOUNDS 14 /* upper bounds in seconds; one more bucket holds the rest (+Inf) */

extern const double hist_bounds[HIST_NBOUNDS];

typedef struct Histogram {
    uint64_t buckets[HIST_NBOUNDS + 1]; /* per bucket, not cumulative; [HIST_NBOUNDS] = above every bound */
    uint64_t count;                     /* observations */
    double sum;                         /* of every observation, seconds */
} Histogram;

void hist_observe(Histogram *h, double seconds);
uint64_t hist_cumulative(const Histogram *h, int bucket);
double metrics_now(void);

#endif
