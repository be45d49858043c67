/* errfmt.h: filling a caller-supplied error buffer. A fallible function takes
 * (char *err, size_t errlen), the caller's buffer and its size, and fills it
 * with errf, so no callee assumes the caller's buffer is ERR_LEN bytes. */
#ifndef PGWAKE_ERRFMT_H
#define PGWAKE_ERRFMT_H

#include <stdbool.h>
#include <stddef.h>

bool errf(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
