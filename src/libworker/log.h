/* log.h - one-line log messages of the worker library, written to stderr. */
#ifndef PGWK_LOG_H
#define PGWK_LOG_H

/* Where and how much the library logs; read-only once the worker is open. */
typedef struct WkLog {
    int level; /* PGWAKE_LOG_*: messages above it are dropped */
} WkLog;

void pgwk_log(const WkLog *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define wk_error(lg, ...) pgwk_log((lg), PGWAKE_LOG_ERROR, __VA_ARGS__)
#define wk_warn(lg, ...) pgwk_log((lg), PGWAKE_LOG_WARN, __VA_ARGS__)
#define wk_info(lg, ...) pgwk_log((lg), PGWAKE_LOG_INFO, __VA_ARGS__)
#define wk_debug(lg, ...) pgwk_log((lg), PGWAKE_LOG_DEBUG, __VA_ARGS__)

#endif
