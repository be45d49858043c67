/* outlog.c: per-stage worker output files. Each line gets a time and worker-id
 * prefix and goes out in one write(2), so lines from many workers never mix;
 * a failed write drops the line (counted) rather than block the loop. */
#include "outlog.h"
#include "clock.h"
#include "errfmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define WORKER_ID_MAX 128      /* longer worker ids are cut in the prefix */
#define REOPEN_RETRY_MS 1000   /* a missing file is retried at most this often */
/* O_NOFOLLOW: a link planted in log_dir must not send lines (or the daemon's
 * O_CREAT) into another file. */
#define OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW)

struct OutLog {
    char *path;            /* <dir>/<stage>.log */
    int fd;                /* -1 while the file cannot be opened */
    int64_t size;          /* bytes in the current file, as far as we know */
    int64_t max_bytes;     /* rotate before exceeding it; <= 0 = never */
    int backups;           /* rotated files kept: .1 (newest) .. .N; 0 = truncate */
    uint64_t dropped;      /* lines lost to failed writes, ever */
    uint64_t dropped_mark; /* `dropped` when the current failure streak began */
    bool failing;          /* in a failure streak (logged once when it starts) */
    bool torn;             /* the last write was short: start the next with '\n' */
    int64_t next_open_ms;  /* while fd < 0: earliest retry of the open */
    int open_errno;        /* while fd < 0: why the last open failed */
};

/* mkdir_p creates dir and its missing parents (mode 0750, so workers' output
 * is not world-readable); an existing folder is fine. -1 with errno. */
static int mkdir_p(const char *dir)
{
    char p[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof p) {
        errno = len ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(p, dir, len + 1);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0750) < 0 && errno != EEXIST)
            return -1;
        *s = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* open_file (re)opens o->path and learns its size; false with errno. */
static bool open_file(OutLog *o)
{
    struct stat st;
    int fd = open(o->path, OPEN_FLAGS, 0600);

    if (fd < 0)
        return false;
    /* Someone else's file (or a fifo) is not ours to write into. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        close(fd);
        errno = EPERM;
        return false;
    }
    /* Open first, then close: a failed open keeps the old file. (The new fd
     * can only equal the old one if someone closed ours behind our back.) */
    if (o->fd >= 0 && o->fd != fd)
        close(o->fd);
    o->fd = fd;
    o->size = (int64_t)st.st_size;
    o->torn = false;
    o->open_errno = 0;
    return true;
}

/* outlog_open opens (creating the folder and the file if missing) the output
 * file of one stage; NULL with err when that is impossible. */
OutLog *outlog_open(const char *dir, const char *stage, int64_t max_bytes, int backups,
                    char *err, size_t errlen)
{
    if (!stage[0] || strchr(stage, '/') || !strcmp(stage, ".") || !strcmp(stage, "..")) {
        errf(err, errlen, "unable to open the log of stage \"%s\": not a file name", stage);
        return NULL;
    }
    if (mkdir_p(dir) < 0) {
        errf(err, errlen, "unable to create log folder %s: %s", dir, strerror(errno));
        return NULL;
    }
    OutLog *o = calloc(1, sizeof *o);
    if (!o || asprintf(&o->path, "%s/%s.log", dir, stage) < 0) {
        errf(err, errlen, "unable to open the log of stage %s: out of memory", stage);
        free(o);
        return NULL;
    }
    o->fd = -1;
    outlog_set_limits(o, max_bytes, backups);
    if (!open_file(o)) {
        errf(err, errlen, "unable to open %s: %s", o->path,
             errno == ELOOP   ? "it is a symbolic link, which pgwake never follows (remove it)"
             : errno == EPERM ? "it is not a regular file of this daemon's user (remove it)"
                              : strerror(errno));
        outlog_close(o);
        return NULL;
    }
    return o;
}

/* outlog_set_limits applies log_max_bytes / log_backups live (a reload); a
 * file already above a smaller limit rotates at its next line. */
void outlog_set_limits(OutLog *o, int64_t max_bytes, int backups)
{
    o->max_bytes = max_bytes;
    o->backups = backups < 0 ? 0 : backups;
}

/* rotated_name writes "<path>.<k>" (k > 0) or the path itself (k == 0). */
static void rotated_name(const OutLog *o, int k, char *out, size_t n)
{
    if (k == 0)
        snprintf(out, n, "%s", o->path);
    else
        snprintf(out, n, "%s.%d", o->path, k);
}

/* rotate shifts <stage>.log -> .1 -> .2 ... (the oldest beyond `backups` is
 * overwritten by the rename) and starts a new file; with no backups the file
 * is truncated. A failure is logged and the file keeps growing until the next
 * try, one max_bytes later: losing output is worse than a big file. */
static void rotate(OutLog *o)
{
    char from[PATH_MAX], to[PATH_MAX];

    if (o->backups == 0) {
        if (ftruncate(o->fd, 0) < 0)
            log_warn("unable to truncate %s: %s (retrying later)", o->path, strerror(errno));
        o->size = 0;
        return;
    }
    for (int k = o->backups; k >= 1; k--) {
        rotated_name(o, k - 1, from, sizeof from);
        rotated_name(o, k, to, sizeof to);
        if (rename(from, to) < 0 && errno != ENOENT) {
            log_warn("unable to rename %s to %s: %s (rotating later)", from, to,
                     strerror(errno));
            o->size = 0;
            return;
        }
    }
    if (!open_file(o)) {
        /* The old fd now names <stage>.log.1: writing on there would rotate
         * again at every line, so drop lines until the open works. */
        o->open_errno = errno;
        log_warn("unable to open %s: %s (dropping lines until it works)", o->path,
                 strerror(errno));
        close(o->fd);
        o->fd = -1;
        o->next_open_ms = mono_ms() + REOPEN_RETRY_MS;
    }
}

/* retry_open tries to open the missing file, at most every REOPEN_RETRY_MS
 * (so a vanished folder costs one open a second, not one per line). */
static bool retry_open(OutLog *o)
{
    int64_t now = mono_ms();

    if (now < o->next_open_ms)
        return false;
    if (open_file(o))
        return true;
    o->open_errno = errno;
    o->next_open_ms = now + REOPEN_RETRY_MS;
    return false;
}

/* note_drop counts a lost line; the first of a streak is logged (never each). */
static void note_drop(OutLog *o, int err)
{
    if (!o->failing) {
        o->failing = true;
        o->dropped_mark = o->dropped;
        log_warn("unable to write %s: %s (dropping its lines until writes succeed)", o->path,
                 strerror(err));
    }
    o->dropped++;
}

/* note_ok ends a failure streak, saying how many lines it cost. */
static void note_ok(OutLog *o)
{
    if (o->failing) {
        o->failing = false;
        log_info("writing %s again after dropping %llu lines", o->path,
                 (unsigned long long)(o->dropped - o->dropped_mark));
    }
}

/* format_prefix writes "YYYY-mm-dd HH:MM:SS.mmm <worker_id> " (local time,
 * like the daemon's own log lines) and returns its length. */
static size_t format_prefix(char *out, size_t n, const char *worker_id)
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t len = strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
    int m = snprintf(out + len, n - len, ".%03d %.*s ", (int)(tv.tv_usec / 1000),
                     WORKER_ID_MAX, worker_id ? worker_id : "-");
    return len + (m > 0 ? (size_t)m : 0);
}

/* write_piece writes one prefixed line of at most LINEBUF_SIZE bytes. */
static void write_piece(OutLog *o, const char *worker_id, const char *line, size_t len)
{
    char out[LINEBUF_SIZE + WORKER_ID_MAX + 48];
    size_t n = 0;

    if (o->torn)
        out[n++] = '\n'; /* end the line a short write left open */
    n += format_prefix(out + n, sizeof out - n, worker_id);
    memcpy(out + n, line, len);
    n += len;
    out[n++] = '\n';

    if (o->fd < 0 && !retry_open(o)) {
        note_drop(o, o->open_errno);
        return;
    }
    if (o->max_bytes > 0 && o->size > 0 && o->size + (int64_t)n > o->max_bytes) {
        rotate(o);
        if (o->fd < 0) {
            note_drop(o, o->open_errno);
            return;
        }
    }
    ssize_t w = write(o->fd, out, n);
    if (w < 0) {
        note_drop(o, errno);
        return;
    }
    o->size += w;
    if ((size_t)w < n) { /* e.g. the disk filled mid-line: the rest is lost */
        o->torn = true;
        note_drop(o, ENOSPC);
        return;
    }
    o->torn = false;
    note_ok(o);
}

/* outlog_write_line writes "<time> <worker_id> <line>\n" with one write(),
 * rotating first when the file would exceed max_bytes; a line longer than
 * LINEBUF_SIZE goes out in several prefixed pieces. A NULL OutLog (no log
 * file) discards the line. */
void outlog_write_line(OutLog *o, const char *worker_id, const char *line, size_t len)
{
    if (!o)
        return;
    do {
        size_t piece = len < LINEBUF_SIZE ? len : LINEBUF_SIZE;
        write_piece(o, worker_id, line, piece);
        line += piece;
        len -= piece;
    } while (len > 0);
}

/* outlog_dropped returns how many lines were lost to failed writes. */
uint64_t outlog_dropped(const OutLog *o)
{
    return o ? o->dropped : 0;
}

/* outlog_path returns "<dir>/<stage>.log". */
const char *outlog_path(const OutLog *o)
{
    return o->path;
}

/* outlog_reopen closes and reopens the path (SIGUSR1, after an external
 * logrotate moved the file away). On failure the old file is kept when there
 * was one, else lines are dropped until an open succeeds. */
bool outlog_reopen(OutLog *o)
{
    if (open_file(o))
        return true;
    if (o->fd < 0) {
        o->open_errno = errno;
        o->next_open_ms = mono_ms() + REOPEN_RETRY_MS;
    }
    log_warn("unable to reopen %s: %s (%s)", o->path, strerror(errno),
             o->fd >= 0 ? "still writing the old file" : "dropping lines until it works");
    return false;
}

/* outlog_close closes the file and frees o; NULL is fine. */
void outlog_close(OutLog *o)
{
    if (!o)
        return;
    if (o->fd >= 0)
        close(o->fd);
    free(o->path);
    free(o);
}

/* tail_push keeps a copy of line, cut on a UTF-8 character boundary so alert
 * bodies (JSON) stay valid UTF-8. */
void tail_push(TailRing *t, const char *line, size_t len)
{
    if (len > TAIL_LINE_MAX - 1) {
        len = TAIL_LINE_MAX - 1;
        while (len > 0 && ((unsigned char)line[len] & 0xC0) == 0x80)
            len--; /* line[len] continues a character: cut before its start */
    }
    memcpy(t->lines[t->next], line, len);
    t->lines[t->next][len] = '\0';
    t->next = (t->next + 1) % TAIL_LINES;
    if (t->count < TAIL_LINES)
        t->count++;
}

/* tail_get returns the i-th kept line, 0 = oldest, or NULL past the end. */
const char *tail_get(const TailRing *t, int i)
{
    if (i < 0 || i >= t->count)
        return NULL;
    return t->lines[(t->next - t->count + i + TAIL_LINES) % TAIL_LINES];
}

/* tail_join writes the kept lines oldest first, separated by sep, into out
 * (always NUL-terminated when n > 0) and returns the length it would need. */
size_t tail_join(const TailRing *t, const char *sep, char *out, size_t n)
{
    size_t need = 0;
    const char *line;

    if (n > 0)
        out[0] = '\0';
    for (int i = 0; (line = tail_get(t, i)); i++) {
        const char *parts[2] = {i ? sep : "", line};
        for (int k = 0; k < 2; k++) {
            size_t len = strlen(parts[k]);
            if (need + 1 < n) {
                size_t c = len < n - 1 - need ? len : n - 1 - need;
                memcpy(out + need, parts[k], c);
                out[need + c] = '\0';
            }
            need += len;
        }
    }
    return need;
}

/* tail_clear forgets the kept lines (a new worker reusing the buffer). */
void tail_clear(TailRing *t)
{
    t->next = 0;
    t->count = 0;
}

/* emit writes one line (or piece) and keeps it in the tail. */
static void emit(OutLog *o, LineBuf *lb, const char *worker_id, const char *p, size_t len)
{
    outlog_write_line(o, worker_id, p, len);
    tail_push(&lb->tail, p, len);
}

/* outlog_feed appends bytes read from a worker's pipe and writes every
 * complete line; a line that outgrows the buffer goes out in LINEBUF_SIZE
 * pieces. A line that is whole within `data` is written straight from it. */
void outlog_feed(OutLog *o, LineBuf *lb, const char *worker_id, const char *data, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n; /* bytes before the newline */
        size_t room = LINEBUF_SIZE - lb->len;

        if (seg > room) { /* the line outgrows the buffer: write a full piece */
            memcpy(lb->buf + lb->len, data, room);
            emit(o, lb, worker_id, lb->buf, LINEBUF_SIZE);
            lb->len = 0;
            data += room;
            n -= room;
            continue;
        }
        if (!nl) { /* incomplete: keep it for the next read */
            memcpy(lb->buf + lb->len, data, seg);
            lb->len += seg;
            return;
        }
        if (lb->len == 0) {
            emit(o, lb, worker_id, data, seg);
        } else {
            memcpy(lb->buf + lb->len, data, seg);
            emit(o, lb, worker_id, lb->buf, lb->len + seg);
            lb->len = 0;
        }
        data += seg + 1;
        n -= seg + 1;
    }
}

/* outlog_flush writes a trailing incomplete line (the pipe reached EOF). */
void outlog_flush(OutLog *o, LineBuf *lb, const char *worker_id)
{
    if (lb->len > 0)
        emit(o, lb, worker_id, lb->buf, lb->len);
    lb->len = 0;
}
