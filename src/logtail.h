/* logtail.h: the last lines of a stage's worker log (<path>, then the
 * rotated <path>.1 .. .<backups> when the newest file holds too few), for
 * GET /stages/NAME/log and `pgwake tail`. Reads at most LOGTAIL_READ_MAX
 * bytes of each file, from its end (64 KiB first, more only when needed).
 * Output that is not UTF-8 is shown with '?' for its non-ASCII bytes. */
#ifndef PGWAKE_LOGTAIL_H
#define PGWAKE_LOGTAIL_H

#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

#include "mustcheck.h"

#define LOGTAIL_MAX_LINES 5000
#define LOGTAIL_READ_MAX (4 << 20)

/* lines: oldest first, each without its newline; worker: only lines whose
 * prefix names that worker id (NULL: all). Returns the array (or NULL with
 * err), and the newest file's size in *size (where `tail -f` goes on). */
json_t *logtail_lines(const char *path, int backups, int want, const char *worker, off_t *size,
                      char *err, size_t n) MUSTCHECK;
/* {"file": path, "lines": [...], "size": bytes} */
json_t *logtail_json(const char *path, int backups, int want, const char *worker, char *err,
                     size_t n) MUSTCHECK;

#endif
