/* logtail.c: see logtail.h. Lines look like "YYYY-mm-dd HH:MM:SS.mmm
 * <worker_id> <text>" (outlog.c); the worker filter compares the third field. */
#include "logtail.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool line_of(const char *line, size_t len, const char *worker)
{
    if (!worker)
        return true;
    const char *p = line, *end = line + len;
    for (int field = 0; field < 2; field++) {
        p = memchr(p, ' ', (size_t)(end - p));
        if (!p)
            return false;
        p++;
    }
    size_t wl = strlen(worker);
    return (size_t)(end - p) > wl && memcmp(p, worker, wl) == 0 && p[wl] == ' ';
}

/* A line as a JSON string; output that is not UTF-8 gets '?' for every
 * byte outside ASCII (jansson keeps only valid UTF-8). */
static json_t *line_json(const char *p, size_t len)
{
    json_t *j = json_stringn(p, len);
    if (j)
        return j;
    char *c = malloc(len + 1);
    if (!c)
        return json_string("");
    for (size_t i = 0; i < len; i++)
        c[i] = (unsigned char)p[i] < 0x80 && p[i] ? p[i] : '?';
    j = json_stringn(c, len);
    free(c);
    return j;
}

/* Collects into acc (oldest first) the last `want` matching lines of
 * buf[0..len), which starts at file offset from (a cut first line there
 * is skipped). */
static void take_lines(const char *buf, size_t len, off_t from, int want, const char *worker,
                       json_t *acc)
{
    size_t end = len;
    while (end > 0 && json_array_size(acc) < (size_t)want) {
        size_t stop = end;
        if (buf[stop - 1] == '\n')
            stop--;
        size_t start = stop;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
        if (start == 0 && from > 0)
            break;
        if (line_of(buf + start, stop - start, worker))
            json_array_insert_new(acc, 0, line_json(buf + start, stop - start));
        end = start;
    }
}

#define FIRST_WINDOW (64 << 10)

/* Reads the end of one file into acc: the last 64 KiB, then four times
 * more while that holds fewer than want lines, up to LOGTAIL_READ_MAX (a
 * read on the daemon's loop stays small for the usual tail). 1 = read,
 * 0 = no such file, -1 = error (in err). */
static int tail_file(const char *path, int want, const char *worker, json_t *acc, off_t *size,
                     char *err, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return snprintf(err, n, "unable to open %s: %s", path, strerror(errno)), -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return snprintf(err, n, "%s is not a readable regular file", path), -1;
    }
    if (size)
        *size = st.st_size;
    for (off_t window = FIRST_WINDOW;; window *= 4) {
        if (window > LOGTAIL_READ_MAX)
            window = LOGTAIL_READ_MAX;
        off_t from = st.st_size > window ? st.st_size - window : 0;
        size_t len = (size_t)(st.st_size - from);
        char *buf = malloc(len + 1);
        ssize_t got = buf ? pread(fd, buf, len, from) : -1;
        if (got < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return snprintf(err, n, "unable to read %s: %s", path, buf ? strerror(e) : "out of memory"), -1;
        }
        json_array_clear(acc);
        take_lines(buf, (size_t)got, from, want, worker, acc);
        free(buf);
        if (json_array_size(acc) >= (size_t)want || from == 0 || window == LOGTAIL_READ_MAX)
            break;
    }
    close(fd);
    return 1;
}

json_t *logtail_lines(const char *path, int backups, int want, const char *worker, off_t *size,
                      char *err, size_t n)
{
    json_t *acc = json_array();
    if (size)
        *size = 0;
    for (int k = 0; k <= backups && json_array_size(acc) < (size_t)want; k++) {
        char p[PATH_MAX];
        if (k)
            snprintf(p, sizeof p, "%s.%d", path, k);
        else
            snprintf(p, sizeof p, "%s", path);
        /* The older files' lines come before the newer ones: insert at 0. */
        json_t *older = json_array();
        int rc = tail_file(p, want - (int)json_array_size(acc), worker, older, k ? NULL : size, err, n);
        if (rc < 0) {
            json_decref(older);
            json_decref(acc);
            return NULL;
        }
        json_array_extend(older, acc);
        json_decref(acc);
        acc = older;
        if (rc == 0 && k > 0)
            break;
    }
    return acc;
}

json_t *logtail_json(const char *path, int backups, int want, const char *worker, char *err, size_t n)
{
    off_t size;
    json_t *lines = logtail_lines(path, backups, want, worker, &size, err, n);
    if (!lines)
        return NULL;
    return json_pack("{s:s,s:o,s:I}", "file", path, "lines", lines, "size", (json_int_t)size);
}
