/* errfmt.h: filling a caller-supplied error buffer (STYLE: user-facing errors
 * go into a char err[ERR_LEN] the caller owns). */
#ifndef PGWAKE_ERRFMT_H
#define PGWAKE_ERRFMT_H

#include <stdbool.h>
#include <stddef.h>

bool errf(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
