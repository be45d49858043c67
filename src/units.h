/* units.h: the durations ("90s", "5m", "1.5s") and sizes ("1G") of the
 * configuration file, parsed exactly into integers; pure functions. */
#ifndef PGWAKE_UNITS_H
#define PGWAKE_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mustcheck.h"

bool units_parse_duration(const char *s, int64_t *ms_out) MUSTCHECK;
bool units_parse_size(const char *s, int64_t *bytes_out) MUSTCHECK;
char *units_format_duration(int64_t ms, char *buf, size_t n);

#endif
