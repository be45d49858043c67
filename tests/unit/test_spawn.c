/* test_spawn.c: worker start-up: environment layering, PATH resolution, and
 * real spawns of /bin/sh checking what the child inherits (fds 0-3 only, the
 * wake socket on 3, /dev/null stdin, own process group, default signals),
 * exec/chdir failures over the status pipe, the death signal, proc start time. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "spawn.h"

extern char **environ;

/* Clears the bits of signals 32 and 33 (NPTL's internal ones) in a
 * /proc/PID/status signal mask written as 16 hex digits. */
static char *mask_glibc_internal(char *hex)
{
    unsigned long long v = strtoull(hex, NULL, 16) & ~(3ULL << 31);
    snprintf(hex, 17, "%016llx", v);
    return hex;
}

static char tmpdir[64];

/* ---------------------------------------------------------------- helpers */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/test_spawn.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmp_path(const char *name)
{
    char *p;
    assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
    return p;
}

static void make_file(const char *name, mode_t mode)
{
    char *p = tmp_path(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    assert_int_equal(chmod(p, mode), 0);
    free(p);
}

static void make_dir(const char *name)
{
    char *p = tmp_path(name);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

/* wait_readable waits up to 10 s for fd to be readable (or hung up). */
static void wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
}

/* read_all reads fd to end of file (10 s at most), malloc'd and terminated. */
static char *read_all(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    for (;;) {
        wait_readable(fd);
        if (len + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* reap waits (10 s at most) for pid and returns its wait status. */
static int reap(pid_t pid)
{
    int status;
    for (int i = 0; i < 1000; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        assert_int_equal(r, 0);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg("process %d did not end", (int)pid);
    return -1;
}

/* section returns a copy of the lines between "BEGIN-name" and "END-name". */
static char *section(const char *out, const char *name)
{
    char begin[64], end[64];
    snprintf(begin, sizeof begin, "BEGIN-%s\n", name);
    snprintf(end, sizeof end, "END-%s\n", name);
    const char *b = strstr(out, begin), *e = b ? strstr(b, end) : NULL;
    assert_non_null(e);
    b += strlen(begin);
    return strndup(b, (size_t)(e - b));
}

/* has_line says whether text has line as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

static char *sh_argv[4] = {"/bin/sh", "-c", NULL, NULL};

/* ------------------------------------------------------------- environment */

static void test_env_layers(void **state)
{
    (void)state;
    char *base[] = {"A=1",     "SMTP_PASSWORD=x", "PGWAKE_CONTROL_TOKEN=t", "SECRET=s", "B=2",
                    "NOEQUAL", "=empty-key",      "A=dup",                  "AB=keep",  NULL};
    char *env_file[] = {"B=3", "C=4", "SMTP_PASSWORD=mine", NULL};
    char *environment[] = {"C=5", "D=6", "EMPTY=", NULL};
    char *extra[] = {"PGWAKE_STAGE=s", "A=9", NULL};
    char *drop[] = {"SECRET", "A=ignored", NULL};
    char **env = spawn_build_env(base, env_file, environment, extra, drop, false);
    assert_non_null(env);
    /* base order kept, replaced in place; later layers appended in order; a
     * secret the user sets on purpose (env_file) is theirs */
    const char *want[] = {"A=9", "B=3", "AB=keep", "C=5", "SMTP_PASSWORD=mine", "D=6",
                          "EMPTY=", "PGWAKE_STAGE=s", NULL};
    for (int i = 0; want[i] || env[i]; i++) {
        assert_non_null(want[i]);
        assert_non_null(env[i]);
        assert_string_equal(env[i], want[i]);
    }
    spawn_env_free(env);

    /* a drop names a key exactly: "A" drops A, not AB */
    char *drop_a[] = {"A", NULL};
    env = spawn_build_env(base, NULL, NULL, NULL, drop_a, false);
    const char *want2[] = {"SECRET=s", "B=2", "AB=keep", NULL};
    for (int i = 0; want2[i] || env[i]; i++) {
        assert_non_null(want2[i]);
        assert_non_null(env[i]);
        assert_string_equal(env[i], want2[i]);
    }
    spawn_env_free(env);

    env = spawn_build_env(NULL, NULL, NULL, NULL, NULL, false);
    assert_non_null(env);
    assert_null(env[0]);
    spawn_env_free(env);
    spawn_env_free(NULL);
}

/* with worker_dsn, the daemon's credentials stay behind; the stage's own
 * environment may still set them on purpose */
static void test_env_no_credentials(void **state)
{
    (void)state;
    char *base[] = {"PGPASSWORD=p", "PGPASSFILE=/root/.pgpass", "PGSERVICE=s", "PGUSER=admin",
                    "PGSSLKEY=/k", "DATABASE_URL=postgres://a:b@h/d", "POSTGRES_URL=x",
                    "PGWAKE_DSN=dsn", "PGSERVICEFILE=/f", "PGSSLCERT=/c", "PGHOST=/run/pg",
                    "PGPORT=5432", NULL};
    char *environment[] = {"PGUSER=worker", NULL};
    char **env = spawn_build_env(base, NULL, environment, NULL, NULL, true);
    assert_non_null(env);
    const char *want[] = {"PGHOST=/run/pg", "PGPORT=5432", "PGUSER=worker", NULL};
    for (int i = 0; want[i] || env[i]; i++) {
        assert_non_null(want[i]);
        assert_non_null(env[i]);
        assert_string_equal(env[i], want[i]);
    }
    spawn_env_free(env);
    env = spawn_build_env(base, NULL, NULL, NULL, NULL, false);
    assert_string_equal(env[0], "PGPASSWORD=p"); /* without worker_dsn: the same login */
    spawn_env_free(env);
}

/* -------------------------------------------------------------------- path */

static void expect_path(const char *argv0, const char *dir, const char *path_env,
                        const char *want_suffix)
{
    char err[256] = "";
    char *p = spawn_resolve_path(argv0, dir, path_env, err, sizeof err);
    if (!p)
        fail_msg("%s: %s", argv0, err);
    char *want = tmp_path(want_suffix);
    assert_string_equal(p, want);
    free(want);
    free(p);
}

static void expect_no_path(const char *argv0, const char *dir, const char *path_env,
                           const char *why)
{
    char err[256] = "";
    char *p = spawn_resolve_path(argv0, dir, path_env, err, sizeof err);
    if (p)
        fail_msg("%s resolved to %s", argv0, p);
    if (!strstr(err, why))
        fail_msg("%s: \"%s\" lacks \"%s\"", argv0, err, why);
    if (argv0[0] && !strstr(err, argv0))
        fail_msg("\"%s\" does not name %s", err, argv0);
}

static void test_resolve_path(void **state)
{
    (void)state;
    make_dir("bin");
    make_dir("bin2");
    make_dir("bin/sub");
    make_file("bin/tool", 0755);
    make_file("bin/noexec", 0644);
    make_file("bin2/tool", 0644); /* shadows bin/tool but cannot run: skipped */
    char *bin = tmp_path("bin"), *bin2 = tmp_path("bin2"), *path_env;

    /* with '/': as is, relative to directory when relative */
    expect_path("./bin/tool", tmpdir, NULL, "./bin/tool");
    expect_path("bin/tool", tmpdir, "/nowhere", "bin/tool");
    char *abs = tmp_path("bin/tool");
    expect_path(abs, "/somewhere/else", NULL, "bin/tool");
    free(abs);
    expect_no_path("./bin/noexec", tmpdir, NULL, "Permission denied");
    expect_no_path("./bin/missing", tmpdir, NULL, "No such file or directory");
    expect_no_path("./bin/sub", tmpdir, NULL, "Is a directory");

    /* PATH search, in order; absolute, relative and empty entries */
    assert_true(asprintf(&path_env, "/nonexistent:%s:%s", bin2, bin) > 0);
    expect_path("tool", NULL, path_env, "bin/tool");
    expect_no_path("noexec", NULL, path_env, "Permission denied");
    expect_no_path("nothere", NULL, path_env, "No such file or directory");
    expect_no_path("sub", NULL, path_env, "Permission denied"); /* a folder is skipped */
    free(path_env);
    expect_path("tool", tmpdir, "/nonexistent:bin", "bin/tool");
    expect_path("tool", bin, "/nonexistent::/usr/bin", "bin/./tool");
    expect_path("tool", bin, "/nonexistent:.", "bin/./tool");

    /* no PATH: a default one */
    char err[256];
    char *sh = spawn_resolve_path("sh", NULL, NULL, err, sizeof err);
    assert_non_null(sh);
    assert_true(strlen(sh) > 3 && !strcmp(sh + strlen(sh) - 3, "/sh"));
    free(sh);
    expect_no_path("", NULL, NULL, "empty command");
    free(bin);
    free(bin2);
}

/* ------------------------------------------------------------------ spawns */

/* start runs script under /bin/sh with the given fds; returns the pid and the
 * exec-status fd in *st. */
static pid_t start(const char *script, char **envp, const char *dir, const SpawnUser *user,
                   int wake, int out, int err_fd, int *st)
{
    char err[256] = "";
    sh_argv[2] = (char *)script;
    SpawnReq r = {.path = "/bin/sh", .argv = sh_argv, .envp = envp, .directory = dir,
                  .user = user, .wake_fd = wake, .out_fd = out, .err_fd = err_fd};
    pid_t pid = spawn_start(&r, st, err, sizeof err);
    if (pid <= 0)
        fail_msg("spawn_start: %s", err);
    assert_true(*st >= 0);
    assert_true(fcntl(*st, F_GETFD) & FD_CLOEXEC);
    assert_true(fcntl(*st, F_GETFL) & O_NONBLOCK);
    return pid;
}

/* proc_link returns readlink /proc/PID/fd/FD in a static buffer ("" if none). */
static const char *proc_link(pid_t pid, int fd)
{
    static char target[256];
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    return target;
}

/* proc_fds lists the open fds of pid, ascending, as "0 1 2 3 ". */
static void proc_fds(pid_t pid, char *out, size_t n)
{
    char path[64];
    bool open_fd[64] = {false};
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        assert_true(fd < 64);
        open_fd[fd] = true;
    }
    closedir(d);
    out[0] = '\0';
    for (int fd = 0; fd < 64; fd++)
        if (open_fd[fd])
            snprintf(out + strlen(out), n - strlen(out), "%d ", fd);
}

/* proc_status returns the value of a /proc/PID/status field, malloc'd. */
static char *proc_status(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *v = NULL;
    while (!v && fgets(line, sizeof line, f))
        if (!strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
            v = strndup(line + strlen(field) + 2, strcspn(line + strlen(field) + 2, "\n"));
    fclose(f);
    assert_non_null(v);
    return v;
}

/* wait_comm waits (10 s at most) until pid runs the program named comm. */
static void wait_comm(pid_t pid, const char *comm)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(path, "r");
        bool same = f && fgets(buf, sizeof buf, f) && !strncmp(buf, comm, strlen(comm)) &&
                    buf[strlen(comm)] == '\n';
        if (f)
            fclose(f);
        if (same)
            return;
        usleep(10000);
    }
    fail_msg("process %d never ran %s", (int)pid, comm);
}

/* expect_fd checks that fd of pid is "KIND:[INODE]" (a pipe or socket). */
static void expect_fd(pid_t pid, int fd, const char *kind, unsigned long ino)
{
    char want[128];
    snprintf(want, sizeof want, "%s:[%lu]", kind, ino);
    assert_string_equal(proc_link(pid, fd), want);
}

/* The shell talks over fd 3 both ways, prints its environment, then becomes
 * `sleep`, whose fds and signal state (what a worker inherits across exec)
 * the test reads from /proc while it sleeps. Reading them from inside the
 * shell would race with dash's own pipes and its signal blocking around
 * vfork. */
static const char inspect_script[] = "echo hello-from-child >&3\n"
                                     "read reply <&3\n"
                                     "echo \"reply=$reply\"\n"
                                     "echo BEGIN-ENV; env; echo END-ENV\n"
                                     "exec sleep 30\n";

static void test_spawn_inherits_only_what_it_should(void **state)
{
    (void)state;
    int sp[2], out[2], st;
    struct stat sst, pst;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    /* the daemon's end is non-blocking; the child's stdout must not be */
    assert_int_equal(fcntl(out[1], F_SETFL, O_NONBLOCK), 0);
    int leak = open("/dev/null", O_RDONLY); /* no CLOEXEC: must not reach the child */
    assert_true(leak >= 0);
    fstat(sp[1], &sst);
    fstat(out[1], &pst);

    /* the daemon ignores SIGPIPE and has signals blocked: the child must not */
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigset_t blk, old_mask;
    sigemptyset(&blk);
    sigaddset(&blk, SIGUSR2);
    sigaddset(&blk, SIGTERM);
    sigprocmask(SIG_BLOCK, &blk, &old_mask);

    char *extra[] = {"PGWAKE_WAKE_FD=3", "PGWAKE_STAGE=test", NULL};
    setenv("SMTP_PASSWORD", "hunter2", 1);
    char **env = spawn_build_env(environ, NULL, NULL, extra, NULL, false);
    unsetenv("SMTP_PASSWORD");
    pid_t pid = start(inspect_script, env, NULL, NULL, sp[1], out[1], out[1], &st);
    spawn_env_free(env);
    sigaction(SIGPIPE, &old_pipe, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    close(sp[1]);
    close(out[1]);
    close(leak);
    assert_false(fcntl(out[0], F_GETFL) & O_NONBLOCK); /* only the child's end changed */

    /* fd 3 is the socketpair, both ways */
    char buf[64];
    wait_readable(sp[0]);
    ssize_t n = read(sp[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "hello-from-child\n");
    /* its own session and process group */
    assert_int_equal(getpgid(pid), pid);
    assert_int_equal(getsid(pid), pid);
    assert_int_equal(write(sp[0], "go\n", 3), 3);

    /* what the exec'd program inherited */
    wait_comm(pid, "sleep");
    char fds[128];
    proc_fds(pid, fds, sizeof fds);
    assert_string_equal(fds, "0 1 2 3 ");
    assert_string_equal(proc_link(pid, 0), "/dev/null");
    expect_fd(pid, 1, "pipe", (unsigned long)pst.st_ino);
    expect_fd(pid, 2, "pipe", (unsigned long)pst.st_ino);
    expect_fd(pid, 3, "socket", (unsigned long)sst.st_ino);
    char *blocked = proc_status(pid, "SigBlk"), *ignored = proc_status(pid, "SigIgn");
    assert_string_equal(blocked, "0000000000000000");
    /* Signals 32 and 33 are glibc's own (thread cancellation, setxid):
     * sigaction refuses them, so a disposition inherited from whoever
     * started the test (make does ignore them) stays; every other is reset. */
    assert_string_equal(mask_glibc_internal(ignored), "0000000000000000");
    free(blocked);
    free(ignored);
    kill(pid, SIGTERM); /* neither blocked nor ignored: it ends */
    int status = reap(pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);

    char *o = read_all(out[0]);
    assert_true(has_line(o, "reply=go"));
    char *envs = section(o, "ENV");
    assert_true(has_line(envs, "PGWAKE_WAKE_FD=3"));
    assert_true(has_line(envs, "PGWAKE_STAGE=test"));
    assert_null(strstr(envs, "SMTP_PASSWORD"));
    free(envs);
    free(o);
    char reason[256];
    assert_int_equal(spawn_exec_status(st, reason, sizeof reason), 1);
    close(st);
    close(sp[0]);
    close(out[0]);
}

/* move_high moves fd to a number >= 20 (CLOEXEC). */
static int move_high(int fd)
{
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 20);
    assert_true(hi >= 20);
    close(fd);
    return hi;
}

/* move_to moves fd to number target (CLOEXEC). */
static int move_to(int fd, int target)
{
    if (fd == target)
        return fd;
    assert_int_equal(dup3(fd, target, O_CLOEXEC), target);
    close(fd);
    return target;
}

static void test_spawn_fd_number_clashes(void **state)
{
    (void)state;
    /* The wake fd already on 3 and CLOEXEC; stdout and stderr swapped: the
     * child's stdout comes from our fd 2 and its stderr from our fd 1. */
    int sp[2], a[2], b[2], st;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(pipe2(a, O_CLOEXEC), 0);
    assert_int_equal(pipe2(b, O_CLOEXEC), 0);
    /* move everything high, so that fd 3 is free for the child's end */
    int *fds[] = {&sp[0], &sp[1], &a[0], &a[1], &b[0], &b[1]};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        *fds[i] = move_high(*fds[i]);
    if (fcntl(3, F_GETFD) >= 0)
        skip(); /* something of the test harness holds fd 3 */
    int wake = move_to(sp[1], 3);

    int save1 = dup(1), save2 = dup(2);
    fflush(stdout);
    fflush(stderr);
    dup2(a[1], 1); /* our fd 1 -> pipe a */
    dup2(b[1], 2); /* our fd 2 -> pipe b */
    char err[256] = "";
    sh_argv[2] = "echo to-stdout; echo to-stderr >&2; echo to-wake >&3";
    SpawnReq r = {.path = "/bin/sh", .argv = sh_argv, .wake_fd = 3, .out_fd = 2, .err_fd = 1};
    pid_t pid = spawn_start(&r, &st, err, sizeof err);
    dup2(save1, 1);
    dup2(save2, 2);
    close(save1);
    close(save2);
    if (pid <= 0)
        fail_msg("spawn_start: %s", err);
    close(a[1]);
    close(b[1]);
    close(wake);

    char *out_a = read_all(a[0]), *out_b = read_all(b[0]), *out_w = read_all(sp[0]);
    assert_string_equal(out_b, "to-stdout\n"); /* stdout from our fd 2 = pipe b */
    assert_string_equal(out_a, "to-stderr\n");
    assert_string_equal(out_w, "to-wake\n");
    free(out_a);
    free(out_b);
    free(out_w);
    int status = reap(pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(st);
    close(a[0]);
    close(b[0]);
    close(sp[0]);
}

static void test_spawn_without_wake_fd(void **state)
{
    (void)state;
    int out[2], st;
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    /* no wake fd, stderr to /dev/null, in / */
    pid_t pid = start("echo lost >&2; echo \"pwd=$(pwd)\"; exec sleep 30", NULL, "/", NULL, -1,
                      out[1], -1, &st);
    close(out[1]);
    wait_comm(pid, "sleep");
    char fds[128];
    proc_fds(pid, fds, sizeof fds);
    assert_string_equal(fds, "0 1 2 ");
    assert_string_equal(proc_link(pid, 2), "/dev/null");
    kill(pid, SIGKILL);
    reap(pid);
    char *o = read_all(out[0]);
    assert_string_equal(o, "pwd=/\n");
    free(o);
    close(st);
    close(out[0]);
}

/* expect_exec_failure spawns path (in dir, as user) and expects the status
 * pipe to report `want`, and exit 127. */
static void expect_exec_failure(const char *path, const char *dir, const SpawnUser *user,
                                const char *want)
{
    char err[256] = "", reason[512] = "";
    int st;
    char *argv[] = {(char *)path, NULL};
    SpawnReq r = {.path = path, .argv = argv, .directory = dir, .user = user,
                  .wake_fd = -1, .out_fd = -1, .err_fd = -1};
    pid_t pid = spawn_start(&r, &st, err, sizeof err);
    if (pid <= 0)
        fail_msg("spawn_start: %s", err);
    int status = reap(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 127);
    wait_readable(st);
    assert_int_equal(spawn_exec_status(st, reason, sizeof reason), -1);
    if (strcmp(reason, want) != 0)
        fail_msg("reason \"%s\", want \"%s\"", reason, want);
    /* read once: then end of file */
    assert_int_equal(spawn_exec_status(st, reason, sizeof reason), 1);
    close(st);
}

static void test_exec_and_chdir_failures(void **state)
{
    (void)state;
    expect_exec_failure("/nonexistent/prog", NULL, NULL,
                        "exec /nonexistent/prog: No such file or directory");
    expect_exec_failure("/bin/sh", "/nonexistent-dir-pgwake", NULL,
                        "chdir /nonexistent-dir-pgwake: No such file or directory");
    make_file("plain", 0644);
    char *plain = tmp_path("plain"), want[512];
    snprintf(want, sizeof want, "exec %s: Permission denied", plain);
    expect_exec_failure(plain, NULL, NULL, want);
    free(plain);
}

static void test_exec_status_states(void **state)
{
    (void)state;
    int p[2];
    char reason[64];
    assert_int_equal(pipe2(p, O_NONBLOCK), 0);
    assert_int_equal(spawn_exec_status(p[0], reason, sizeof reason), 0); /* not yet */
    assert_int_equal(write(p[1], "xy", 2), 2);
    assert_int_equal(spawn_exec_status(p[0], reason, sizeof reason), -1); /* garbage */
    assert_non_null(strstr(reason, "malformed"));
    close(p[1]);
    assert_int_equal(spawn_exec_status(p[0], reason, sizeof reason), 1);
    close(p[0]);
    assert_int_equal(spawn_exec_status(p[0], reason, sizeof reason), -1); /* EBADF */
    assert_non_null(strstr(reason, "Bad file descriptor"));
}

/* -------------------------------------------------------------------- users */

static void test_lookup_user(void **state)
{
    (void)state;
    SpawnUser u;
    char err[256];
    assert_true(spawn_lookup_user("root", &u, err, sizeof err));
    assert_true(u.set);
    assert_int_equal(u.uid, 0);
    assert_int_equal(u.gid, 0);
    assert_true(u.ngroups >= 1);
    assert_string_equal(u.home, "/root");
    spawn_user_free(&u);
    assert_false(u.set);
    assert_true(spawn_lookup_user("0", &u, err, sizeof err)); /* numeric: by uid */
    assert_int_equal(u.uid, 0);
    spawn_user_free(&u);
    assert_false(spawn_lookup_user("no-such-user-pgwake", &u, err, sizeof err));
    assert_string_equal(err, "unknown user no-such-user-pgwake");
    assert_false(spawn_lookup_user("4000000000", &u, err, sizeof err));
}

static void test_spawn_as_user(void **state)
{
    (void)state;
    SpawnUser u;
    char err[256];
    if (geteuid() != 0) {
        /* unprivileged: dropping to root must fail, precisely reported */
        assert_true(spawn_lookup_user("root", &u, err, sizeof err));
        expect_exec_failure("/bin/true", NULL, &u, "setgroups: Operation not permitted");
        spawn_user_free(&u);
        return;
    }
    if (!spawn_lookup_user("nobody", &u, err, sizeof err))
        skip();
    int out[2], st;
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = start("id -u; id -g; id -G; cat /proc/$$/status | grep -E '^Uid|^Gid'", NULL,
                      "/", &u, -1, out[1], out[1], &st);
    close(out[1]);
    char *o = read_all(out[0]), want[256];
    snprintf(want, sizeof want, "%u\n%u\n", (unsigned)u.uid, (unsigned)u.gid);
    assert_memory_equal(o, want, strlen(want));
    snprintf(want, sizeof want, "Uid:\t%u\t%u\t%u\t%u", (unsigned)u.uid, (unsigned)u.uid,
             (unsigned)u.uid, (unsigned)u.uid);
    assert_true(has_line(o, want));
    free(o);
    int status = reap(pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(st);
    close(out[0]);

    /* chdir happens as the user: a root-only folder is refused */
    char *priv = tmp_path("private");
    assert_int_equal(mkdir(priv, 0700), 0);
    char want2[512];
    snprintf(want2, sizeof want2, "chdir %s: Permission denied", priv);
    expect_exec_failure("/bin/true", priv, &u, want2);
    free(priv);
    spawn_user_free(&u);
}

/* ------------------------------------------------------------ death signal */

static void test_death_signal(void **state)
{
    (void)state;
    /* A middle process spawns `sleep`, tells us its pid once exec'd, and
     * exits: the sleep must get SIGTERM, and we (subreaper) reap it. */
    assert_true(spawn_become_subreaper());
    int rep[2];
    assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) {
        char err[256];
        char *argv[] = {"/bin/sleep", "30", NULL};
        SpawnReq r = {.path = argv[0], .argv = argv, .wake_fd = -1, .out_fd = -1, .err_fd = -1};
        int st;
        pid_t pid = spawn_start(&r, &st, err, sizeof err);
        if (pid <= 0)
            _exit(1);
        struct pollfd p = {.fd = st, .events = POLLIN};
        if (poll(&p, 1, 10000) != 1 || spawn_exec_status(st, err, sizeof err) != 1)
            _exit(2);
        if (write(rep[1], &pid, sizeof pid) != sizeof pid)
            _exit(3);
        _exit(0);
    }
    close(rep[1]);
    int status = reap(mid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    pid_t sleeper;
    assert_int_equal(read(rep[0], &sleeper, sizeof sleeper), sizeof sleeper);
    close(rep[0]);
    status = reap(sleeper);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
}

/* -------------------------------------------------------------- start time */

static void test_proc_start_time(void **state)
{
    (void)state;
    /* a command name with spaces and parentheses must not confuse the parse */
    char *link = tmp_path("a) b (c");
    assert_int_equal(symlink("/bin/sleep", link), 0);
    char *argv[] = {link, "5", NULL};
    char err[256];
    int st;
    SpawnReq r = {.path = link, .argv = argv, .wake_fd = -1, .out_fd = -1, .err_fd = -1};
    pid_t pid = spawn_start(&r, &st, err, sizeof err);
    assert_true(pid > 0);
    wait_readable(st);
    assert_int_equal(spawn_exec_status(st, err, sizeof err), 1);
    close(st);

    long long t = spawn_proc_start_time(pid);
    /* clock ticks since boot: close to the uptime now */
    FILE *f = fopen("/proc/uptime", "r");
    double up;
    assert_int_equal(fscanf(f, "%lf", &up), 1);
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    long long now_ticks = (long long)(up * (double)hz);
    assert_true(t > 0);
    assert_true(t <= now_ticks + hz && t >= now_ticks - 10 * hz);
    assert_int_equal(spawn_proc_start_time(pid), t);
    assert_true(spawn_proc_start_time(getpid()) <= t);
    kill(pid, SIGKILL);
    reap(pid);
    assert_int_equal(spawn_proc_start_time(pid), -1); /* reaped: gone */
    assert_int_equal(spawn_proc_start_time(0), -1);
    assert_int_equal(spawn_proc_start_time(-5), -1);
    free(link);
}

/* --------------------------------------------------------------- std fds */

static void test_ensure_std_fds(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Whatever the test inherited (make's jobserver pipes) goes first. */
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        close(0);
        close(2);
        spawn_ensure_std_fds();
        char l[64];
        for (int fd = 0; fd <= 2; fd++) {
            ssize_t n;
            char p[32];
            snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
            if (fd != 1 && ((n = readlink(p, l, sizeof l - 1)) < 0 ||
                            (l[n] = '\0', strcmp(l, "/dev/null") != 0)))
                _exit(10 + fd);
        }
        if (fcntl(3, F_GETFD) >= 0) /* nothing left open above */
            _exit(20);
        spawn_ensure_std_fds(); /* all open: a no-op */
        _exit(fcntl(3, F_GETFD) >= 0 ? 21 : 0);
    }
    int status = reap(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_layers),
        cmocka_unit_test(test_env_no_credentials),
        cmocka_unit_test_setup_teardown(test_resolve_path, setup, teardown),
        cmocka_unit_test(test_spawn_inherits_only_what_it_should),
        cmocka_unit_test(test_spawn_fd_number_clashes),
        cmocka_unit_test(test_spawn_without_wake_fd),
        cmocka_unit_test_setup_teardown(test_exec_and_chdir_failures, setup, teardown),
        cmocka_unit_test(test_exec_status_states),
        cmocka_unit_test(test_lookup_user),
        cmocka_unit_test_setup_teardown(test_spawn_as_user, setup, teardown),
        cmocka_unit_test(test_death_signal),
        cmocka_unit_test_setup_teardown(test_proc_start_time, setup, teardown),
        cmocka_unit_test(test_ensure_std_fds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
