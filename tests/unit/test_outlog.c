/* test_outlog.c: worker output files: line assembly from split reads, long
 * lines, the trailing partial line, the tail kept for alerts, rotation, lines
 * dropped on a full disk, reopen after an external logrotate. */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "outlog.h"

#define TS_LEN 23 /* "YYYY-mm-dd HH:MM:SS.mmm" */

static char tmpdir[64];

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_outlog.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* path_in returns tmpdir/name in a static buffer (two can be in use). */
static const char *path_in(const char *name)
{
    static char p[2][256];
    static int i;
    i = !i;
    snprintf(p[i], sizeof p[i], "%s/%s", tmpdir, name);
    return p[i];
}

/* slurp returns a file's content (malloc'd), or NULL when it does not exist. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    fclose(f);
    return buf;
}

/* Lines of a file with their "<time> <id> " prefix checked and removed. */
typedef struct Lines {
    char *text; /* owns the strings below */
    char *v[4096];
    int n;
} Lines;

static void lines_read(Lines *l, const char *path, const char *id)
{
    l->n = 0;
    l->text = slurp(path);
    assert_non_null(l->text);
    char *s = l->text;
    while (*s) {
        char *nl = strchr(s, '\n');
        assert_non_null(nl); /* every line is terminated */
        *nl = '\0';
        /* "2024-01-02 03:04:05.678 id " */
        assert_true(strlen(s) >= TS_LEN + strlen(id) + 2);
        for (int i = 0; i < TS_LEN; i++) {
            if (i == 4 || i == 7)
                assert_int_equal(s[i], '-');
            else if (i == 10)
                assert_int_equal(s[i], ' ');
            else if (i == 13 || i == 16)
                assert_int_equal(s[i], ':');
            else if (i == 19)
                assert_int_equal(s[i], '.');
            else
                assert_true(s[i] >= '0' && s[i] <= '9');
        }
        assert_int_equal(s[TS_LEN], ' ');
        assert_memory_equal(s + TS_LEN + 1, id, strlen(id));
        assert_int_equal(s[TS_LEN + 1 + strlen(id)], ' ');
        assert_true(l->n < 4096);
        l->v[l->n++] = s + TS_LEN + strlen(id) + 2;
        s = nl + 1;
    }
}

static void lines_free(Lines *l)
{
    free(l->text);
    l->text = NULL;
}

static OutLog *open_stage(const char *stage, int64_t max, int backups)
{
    char err[256] = "";
    OutLog *o = outlog_open(tmpdir, stage, max, backups, err, sizeof err);
    if (!o)
        fail_msg("outlog_open: %s", err);
    return o;
}

static void test_split_reads(void **state)
{
    (void)state;
    OutLog *o = open_stage("split", 0, 0);
    LineBuf *lb = calloc(1, sizeof *lb);
    const char *reads[] = {"ab", "c\nde", "f\n\n", "g", "h", "\ni\nj\n"};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++)
        outlog_feed(o, lb, "w-1", reads[i], strlen(reads[i]));
    assert_int_equal(lb->len, 0);

    Lines l;
    lines_read(&l, path_in("split.log"), "w-1");
    const char *want[] = {"abc", "def", "", "gh", "i", "j"};
    assert_int_equal(l.n, 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(l.v[i], want[i]);
    lines_free(&l);
    assert_string_equal(tail_get(&lb->tail, 0), "abc");
    assert_string_equal(tail_get(&lb->tail, 5), "j");
    assert_null(tail_get(&lb->tail, 6));
    assert_int_equal(outlog_dropped(o), 0);
    outlog_close(o);
    free(lb);
}

static void test_long_lines(void **state)
{
    (void)state;
    OutLog *o = open_stage("long", 0, 0);
    LineBuf *lb = calloc(1, sizeof *lb);
    char *big = malloc(10000);
    memset(big, 'x', 10000);

    /* 10000 bytes in odd-sized reads: pieces of 4096, 4096, 1808 */
    for (size_t off = 0; off < 10000; off += 777)
        outlog_feed(o, lb, "w", big + off, off + 777 <= 10000 ? 777 : 10000 - off);
    outlog_feed(o, lb, "w", "\n", 1);
    /* exactly LINEBUF_SIZE, the newline in the next read: one line */
    outlog_feed(o, lb, "w", big, LINEBUF_SIZE);
    outlog_feed(o, lb, "w", "\nend", 4);
    /* a long line whole in one read, then one straight past the buffer */
    memset(big, 'y', 10000);
    big[5000] = '\n';
    outlog_feed(o, lb, "w", big, 10000);
    outlog_flush(o, lb, "w");

    Lines l;
    lines_read(&l, path_in("long.log"), "w");
    const size_t want[] = {4096, 4096, 1808, LINEBUF_SIZE, 4096, 907, 4096, 903};
    assert_int_equal(l.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(strlen(l.v[i]), want[i]);
    assert_int_equal(strspn(l.v[3], "x"), LINEBUF_SIZE);
    /* "end" + 5000 'y' is 5003 bytes: 4096 + 907; then 4999 'y' after the
     * newline: 4096 + 903, the last one flushed */
    assert_memory_equal(l.v[4], "endyyy", 6);
    assert_int_equal(strspn(l.v[7], "y"), 903);
    lines_free(&l);
    free(big);
    free(lb);
    outlog_close(o);
}

static void test_partial_flush(void **state)
{
    (void)state;
    OutLog *o = open_stage("flush", 0, 0);
    LineBuf lb = {0};
    outlog_feed(o, &lb, "w", "one\ntwo", 7);
    outlog_flush(o, &lb, "w");
    outlog_flush(o, &lb, "w"); /* nothing left: writes nothing */
    Lines l;
    lines_read(&l, path_in("flush.log"), "w");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "one");
    assert_string_equal(l.v[1], "two");
    lines_free(&l);
    assert_int_equal(lb.tail.count, 2);
    outlog_close(o);
}

static void test_null_outlog_keeps_tail(void **state)
{
    (void)state;
    LineBuf lb = {0};
    outlog_feed(NULL, &lb, "w", "a\nb\n", 4);
    assert_int_equal(lb.tail.count, 2);
    assert_int_equal(outlog_dropped(NULL), 0);
}

static void test_tail_ring(void **state)
{
    (void)state;
    TailRing t = {0};
    char line[16], out[256];
    assert_null(tail_get(&t, 0));
    assert_int_equal(tail_join(&t, "\n", out, sizeof out), 0);
    assert_string_equal(out, "");
    for (int i = 0; i < TAIL_LINES + 3; i++) {
        int n = snprintf(line, sizeof line, "line %d", i);
        tail_push(&t, line, (size_t)n);
    }
    assert_int_equal(t.count, TAIL_LINES);
    assert_string_equal(tail_get(&t, 0), "line 3"); /* oldest kept */
    assert_string_equal(tail_get(&t, TAIL_LINES - 1), "line 10");
    assert_null(tail_get(&t, -1));
    size_t need = tail_join(&t, " | ", out, sizeof out);
    assert_string_equal(out, "line 3 | line 4 | line 5 | line 6 | line 7 | line 8 | "
                             "line 9 | line 10");
    assert_int_equal(need, strlen(out));
    /* a short buffer: cut, terminated, and the full length still returned */
    char small[10];
    assert_int_equal(tail_join(&t, " | ", small, sizeof small), need);
    assert_string_equal(small, "line 3 | ");

    /* long lines are cut, and never inside a UTF-8 character */
    char big[400];
    memset(big, 'a', sizeof big);
    tail_clear(&t);
    tail_push(&t, big, sizeof big);
    assert_int_equal(strlen(tail_get(&t, 0)), TAIL_LINE_MAX - 1);
    /* "é" (2 bytes) straddling the cut at 199: cut before it */
    memcpy(big + TAIL_LINE_MAX - 2, "\xc3\xa9", 2);
    tail_push(&t, big, sizeof big);
    assert_int_equal(strlen(tail_get(&t, 1)), TAIL_LINE_MAX - 2);
    /* "€" (3 bytes) ending exactly at the cut: kept */
    memset(big, 'a', sizeof big);
    memcpy(big + TAIL_LINE_MAX - 4, "\xe2\x82\xac", 3);
    tail_push(&t, big, sizeof big);
    assert_int_equal(strlen(tail_get(&t, 2)), TAIL_LINE_MAX - 1);
}

/* write_numbered writes lines "line NNNN" from first to first + n - 1. */
static void write_numbered(OutLog *o, int first, int n)
{
    char line[32];
    for (int i = first; i < first + n; i++) {
        int len = snprintf(line, sizeof line, "line %04d", i);
        outlog_write_line(o, "w-7", line, (size_t)len);
    }
}

static void test_rotation_with_backups(void **state)
{
    (void)state;
    /* each line: 23 + 1 + 3 + 1 + 9 + 1 = 38 bytes; 5 fit in 200 */
    OutLog *o = open_stage("rot", 200, 2);
    write_numbered(o, 0, 23);
    struct stat st;
    assert_int_equal(stat(path_in("rot.log.3"), &st), -1);
    int next = 22; /* walk back from the newest line through .log, .1, .2 */
    const char *files[] = {"rot.log", "rot.log.1", "rot.log.2"};
    const int counts[] = {3, 5, 5}; /* 23 lines = 5+5+5+5+3: the oldest 2 files are gone */
    for (int f = 0; f < 3; f++) {
        assert_int_equal(stat(path_in(files[f]), &st), 0);
        assert_true(st.st_size <= 200);
        assert_int_equal(st.st_mode & 0777, 0600);
        Lines l;
        lines_read(&l, path_in(files[f]), "w-7");
        assert_int_equal(l.n, counts[f]);
        char want[32];
        for (int i = l.n - 1; i >= 0; i--) {
            snprintf(want, sizeof want, "line %04d", next--);
            assert_string_equal(l.v[i], want);
        }
        lines_free(&l);
    }

    /* fewer backups from now on (a reload): .2 is no longer refreshed */
    outlog_set_limits(o, 100, 1);
    write_numbered(o, 23, 1); /* 3 lines (114 bytes) already there: rotates first */
    Lines l;
    lines_read(&l, path_in("rot.log"), "w-7");
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "line 0023");
    lines_free(&l);
    lines_read(&l, path_in("rot.log.1"), "w-7");
    assert_int_equal(l.n, 3);
    assert_string_equal(l.v[0], "line 0020");
    lines_free(&l);
    assert_int_equal(outlog_dropped(o), 0);
    outlog_close(o);
}

static void test_rotation_without_backups(void **state)
{
    (void)state;
    OutLog *o = open_stage("trunc", 100, 0);
    write_numbered(o, 0, 7); /* two lines per file */
    struct stat st;
    assert_int_equal(stat(path_in("trunc.log.1"), &st), -1);
    Lines l;
    lines_read(&l, path_in("trunc.log"), "w-7");
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "line 0006");
    lines_free(&l);
    outlog_close(o);
}

static void test_existing_file_size_counts(void **state)
{
    (void)state;
    FILE *f = fopen(path_in("pre.log"), "w");
    assert_non_null(f);
    for (int i = 0; i < 190; i++)
        fputc('z', f);
    fclose(f);
    OutLog *o = open_stage("pre", 200, 1);
    write_numbered(o, 0, 1); /* 190 + 38 > 200: rotates first */
    struct stat st;
    assert_int_equal(stat(path_in("pre.log.1"), &st), 0);
    assert_int_equal(st.st_size, 190);
    outlog_close(o);
}

static int fd_of(const char *path);

static void test_full_disk_drops(void **state)
{
    (void)state;
    /* The stage's fd is swapped for /dev/full: every write is ENOSPC. (A
     * symlink to it is no longer followed: see test_symlink_refused.) */
    OutLog *o = open_stage("full", 1000, 2);
    int fd = fd_of(path_in("full.log")), full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0 && full >= 0);
    assert_int_equal(dup2(full, fd), fd);
    close(full);
    LineBuf lb = {0};
    for (int i = 0; i < 50; i++)
        outlog_feed(o, &lb, "w", "a line\n", 7);
    assert_int_equal(outlog_dropped(o), 50);
    assert_int_equal(lb.tail.count, TAIL_LINES); /* the tail still has them */

    /* the disk is fixed and logrotate sends SIGUSR1 */
    assert_true(outlog_reopen(o));
    outlog_feed(o, &lb, "w", "written\n", 8);
    assert_int_equal(outlog_dropped(o), 50);
    Lines l;
    lines_read(&l, path_in("full.log"), "w");
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "written");
    lines_free(&l);
    outlog_close(o);
}

/* A link planted as the stage's log is never followed, nor a file of
 * another user written into; the link's target is untouched. */
static void test_symlink_refused(void **state)
{
    (void)state;
    char err[256];
    FILE *f = fopen(path_in("target"), "w");
    assert_non_null(f);
    fputs("precious\n", f);
    fclose(f);
    assert_int_equal(symlink(path_in("target"), path_in("ln.log")), 0);
    assert_null(outlog_open(tmpdir, "ln", 1000, 1, err, sizeof err));
    assert_non_null(strstr(err, "symbolic link"));
    struct stat st;
    assert_int_equal(stat(path_in("target"), &st), 0);
    assert_int_equal(st.st_size, 9);
}

/* fd_of finds the descriptor this process holds on path, or -1. */
static int fd_of(const char *path)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int found = -1;
    char link[512], target[512];
    while (d && (e = readdir(d))) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0 && (target[n] = '\0', !strcmp(target, path)))
            found = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return found;
}

static void test_closed_fd_drops(void **state)
{
    (void)state;
    OutLog *o = open_stage("closed", 0, 0);
    int fd = fd_of(path_in("closed.log"));
    assert_true(fd > 2);
    close(fd); /* EBADF from now on */
    write_numbered(o, 0, 3);
    assert_int_equal(outlog_dropped(o), 3);
    assert_true(outlog_reopen(o));
    write_numbered(o, 3, 1);
    assert_int_equal(outlog_dropped(o), 3);
    Lines l;
    lines_read(&l, path_in("closed.log"), "w-7");
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "line 0003");
    lines_free(&l);
    outlog_close(o);
}

static void test_reopen_after_logrotate(void **state)
{
    (void)state;
    OutLog *o = open_stage("ext", 0, 0);
    write_numbered(o, 0, 1);
    assert_int_equal(rename(path_in("ext.log"), path_in("ext.log.old")), 0);
    write_numbered(o, 1, 1); /* still the moved file until the reopen */
    assert_true(outlog_reopen(o));
    write_numbered(o, 2, 1);
    Lines l;
    lines_read(&l, path_in("ext.log.old"), "w-7");
    assert_int_equal(l.n, 2);
    lines_free(&l);
    lines_read(&l, path_in("ext.log"), "w-7");
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "line 0002");
    lines_free(&l);
    outlog_close(o);
}

static void test_vanished_folder(void **state)
{
    (void)state;
    char dir[256], err[256];
    snprintf(dir, sizeof dir, "%s/gone", tmpdir);
    OutLog *o = outlog_open(dir, "s", 0, 0, err, sizeof err);
    assert_non_null(o);
    char file[300];
    snprintf(file, sizeof file, "%s/s.log", dir);
    assert_int_equal(unlink(file), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_false(outlog_reopen(o)); /* keeps the old (deleted) file */
    write_numbered(o, 0, 1);
    assert_int_equal(outlog_dropped(o), 0);
    outlog_close(o);
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[256], dir[256];
    /* missing parents are created */
    snprintf(dir, sizeof dir, "%s/a/b/c", tmpdir);
    OutLog *o = outlog_open(dir, "s", 0, 0, err, sizeof err);
    assert_non_null(o);
    assert_non_null(strstr(outlog_path(o), "/a/b/c/s.log"));
    outlog_close(o);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);

    assert_null(outlog_open(tmpdir, "a/b", 0, 0, err, sizeof err));
    assert_non_null(strstr(err, "not a file name"));
    assert_null(outlog_open(tmpdir, "..", 0, 0, err, sizeof err));

    /* the folder is a file */
    FILE *f = fopen(path_in("plain"), "w");
    fclose(f);
    snprintf(dir, sizeof dir, "%s/plain", tmpdir);
    assert_null(outlog_open(dir, "s", 0, 0, err, sizeof err));
    assert_non_null(strstr(err, "unable to create log folder"));
    assert_non_null(strstr(err, "Not a directory"));
    snprintf(dir, sizeof dir, "%s/plain/sub", tmpdir);
    assert_null(outlog_open(dir, "s", 0, 0, err, sizeof err));
    assert_non_null(strstr(err, "Not a directory"));

    /* the file cannot be opened (it is a folder) */
    assert_int_equal(mkdir(path_in("d.log"), 0700), 0);
    assert_null(outlog_open(tmpdir, "d", 0, 0, err, sizeof err));
    assert_non_null(strstr(err, "unable to open"));
    assert_non_null(strstr(err, "Is a directory"));
}

int main(void)
{
    log_level = LOG_ERROR; /* the drop warnings are expected here */
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_flush, setup, teardown),
        cmocka_unit_test(test_null_outlog_keeps_tail),
        cmocka_unit_test(test_tail_ring),
        cmocka_unit_test_setup_teardown(test_rotation_with_backups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_without_backups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_file_size_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_fd_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_after_logrotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vanished_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
