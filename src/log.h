/* log.h: the daemon's and commands' log lines on stderr: time, level, message.
 * The level check lives in the macros so a disabled line costs one compare. */
#ifndef PGWAKE_LOG_H
#define PGWAKE_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "mustcheck.h"

typedef enum { LOG_FATAL, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_NOISE } LogLevel;

extern LogLevel log_level; /* set once from -v / PGWAKE_LOG_LEVEL; read by the macros */

void log_msg(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void log_fatal_at(const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool log_level_parse(const char *name, LogLevel *out) MUSTCHECK;
void log_escape(const char *in, size_t inlen, char *out, size_t outlen);

#define LOG_AT(lvl, ...) do { if (log_level >= (lvl)) log_msg((lvl), __VA_ARGS__); } while (0)
#define log_error(...) LOG_AT(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LOG_WARN, __VA_ARGS__)
#define log_info(...)  LOG_AT(LOG_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, __VA_ARGS__)
#define log_noise(...) LOG_AT(LOG_NOISE, __VA_ARGS__)
/* fatal: a bug or impossible state. */
#define fatal(...) log_fatal_at(__FILE__, __LINE__, __func__, __VA_ARGS__)

#endif
