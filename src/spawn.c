/* spawn.c: start a worker the way SPEC section 5 says: fork, then in the child
 * only async-signal-safe calls (own session, privileges dropped, death signal,
 * clean signals, fds 0-3 only, chdir) and execve; an exec failure comes back
 * with its errno over a CLOEXEC pipe. Lookups and PATH search happen before. */
#include "spawn.h"
#include "errfmt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STATUS_FD_MIN 10 /* exec-status pipe and scratch dups live above fds 0-3 */
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin" /* when PATH is unset */

/* ------------------------------------------------------------------ helpers */

/* join returns "a/b" (malloc'd), or NULL when out of memory. */
static char *join(const char *a, const char *b)
{
    char *s;
    size_t la = strlen(a);
    bool slash = la > 0 && a[la - 1] == '/';
    return asprintf(&s, "%s%s%s", a, slash ? "" : "/", b) < 0 ? NULL : s;
}

/* --------------------------------------------------------------------- user */

/* spawn_lookup_user looks name (or a numeric uid) up in the user database,
 * with its supplementary groups, so the child can drop privileges without
 * calling anything that is not async-signal-safe. false with err and errno. */
bool spawn_lookup_user(const char *name, SpawnUser *out, char *err, size_t errlen)
{
    struct passwd pw, *res = NULL;
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t bufsz = sz > 0 ? (size_t)sz : 16384;
    char *buf = NULL, *end;
    int rc;

    memset(out, 0, sizeof *out);
    for (;;) {
        char *nb = realloc(buf, bufsz);
        if (!nb) {
            free(buf);
            errf(err, errlen, "unable to look up user %s: out of memory", name);
            return false;
        }
        buf = nb;
        rc = getpwnam_r(name, &pw, buf, bufsz, &res);
        if (!res && rc == 0 && name[0] >= '0' && name[0] <= '9') {
            unsigned long id = strtoul(name, &end, 10);
            if (*end == '\0' && id <= UINT32_MAX)
                rc = getpwuid_r((uid_t)id, &pw, buf, bufsz, &res);
        }
        if (rc != ERANGE || bufsz >= (1u << 20))
            break;
        bufsz *= 2;
    }
    if (!res) {
        bool unknown = rc == 0 || rc == ENOENT || rc == ESRCH;
        if (unknown)
            errf(err, errlen, "unknown user %s", name);
        else
            errf(err, errlen, "unable to look up user %s: %s", name, strerror(rc));
        free(buf);
        errno = unknown ? ENOENT : rc; /* EMFILE here is the daemon's (spawn_errno_ours) */
        return false;
    }
    int ng = SPAWN_MAX_GROUPS;
    if (getgrouplist(pw.pw_name, pw.pw_gid, out->groups, &ng) < 0) {
        errf(err, errlen, "user %s is in more than %d groups", name, SPAWN_MAX_GROUPS);
        free(buf);
        errno = E2BIG;
        return false;
    }
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    out->ngroups = ng;
    out->home = strdup(pw.pw_dir ? pw.pw_dir : "/");
    free(buf);
    if (!out->home) {
        errf(err, errlen, "unable to look up user %s: out of memory", name);
        return false;
    }
    out->set = true;
    return true;
}

/* spawn_user_free frees what spawn_lookup_user allocated and unsets u. */
void spawn_user_free(SpawnUser *u)
{
    free(u->home);
    memset(u, 0, sizeof *u);
}

/* --------------------------------------------------------------------- path */

/* check_exec is execve's verdict on a candidate, as far as the parent can
 * tell: 0, or -1 with errno (ENOENT, EACCES, ...). The check runs with the
 * daemon's ids; a worker user who may not execute it is caught by the child. */
static int check_exec(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = EACCES; /* what execve says of a fifo or a device */
        return -1;
    }
    return access(path, X_OK);
}

/* resolve_slash handles an argv0 containing '/': as is, relative to
 * directory when relative (the child will be there when it execs). */
static char *resolve_slash(const char *argv0, const char *directory, char *err, size_t errlen)
{
    char *path = argv0[0] != '/' && directory ? join(directory, argv0) : strdup(argv0);
    if (!path) {
        errf(err, errlen, "exec %s: out of memory", argv0);
        return NULL;
    }
    if (check_exec(path) < 0) {
        errf(err, errlen, "exec %s: %s", path, strerror(errno));
        free(path);
        return NULL;
    }
    return path;
}

/* spawn_resolve_path finds the file to execute like execvp, but in the
 * parent so the child only calls execve: an argv0 with '/' is taken as is
 * (relative to directory), else each PATH entry is tried in order (an empty
 * entry or ".", and relative entries, count from directory). As execvp does,
 * a match that cannot be executed is skipped, and EACCES is reported only if
 * nothing better is found. Returns a malloc'd path, or NULL with err like
 * "exec NAME: No such file or directory (searched PATH)". */
char *spawn_resolve_path(const char *argv0, const char *directory, const char *path_env,
                         char *err, size_t errlen)
{
    if (!argv0 || !argv0[0]) {
        errf(err, errlen, "exec: empty command");
        return NULL;
    }
    if (strchr(argv0, '/'))
        return resolve_slash(argv0, directory, err, errlen);

    const char *search = path_env && path_env[0] ? path_env : DEFAULT_PATH;
    int why = ENOENT;
    for (const char *p = search;; p++) {
        const char *colon = strchrnul(p, ':');
        char *entry = strndup(p, (size_t)(colon - p));
        char *dir = NULL, *cand = NULL;
        if (entry) {
            bool here = entry[0] == '\0';
            dir = entry[0] != '/' && directory ? join(directory, here ? "." : entry)
                                               : strdup(here ? "." : entry);
            cand = dir ? join(dir, argv0) : NULL;
        }
        free(entry);
        free(dir);
        if (!cand) {
            errf(err, errlen, "exec %s: out of memory", argv0);
            return NULL;
        }
        if (check_exec(cand) == 0)
            return cand;
        if (errno == EACCES || errno == EISDIR)
            why = EACCES;
        free(cand);
        if (*colon == '\0')
            break;
        p = colon;
    }
    errf(err, errlen, "exec %s: %s (searched PATH=%s)", argv0, strerror(why), search);
    return NULL;
}

/* ---------------------------------------------------------------------- env */

/* key_len is the length of the KEY of "KEY=VALUE" (of all of it without '='). */
static size_t key_len(const char *kv)
{
    return (size_t)(strchrnul(kv, '=') - kv);
}

/* in_list says whether the key of kv is one of the names in list. */
static bool in_list(const char *kv, char *const *list)
{
    size_t n = key_len(kv);
    for (; list && *list; list++)
        if (strlen(*list) == n && !memcmp(*list, kv, n))
            return true;
    return false;
}

/* env_put adds a copy of kv to env (n entries), replacing an entry with the
 * same key in place; entries without "KEY=" are ignored. false = no memory. */
static bool env_put(char **env, size_t *n, const char *kv)
{
    size_t klen = key_len(kv);
    if (klen == 0 || kv[klen] != '=')
        return true;
    char *copy = strdup(kv);
    if (!copy)
        return false;
    for (size_t i = 0; i < *n; i++) {
        if (!strncmp(env[i], kv, klen + 1)) {
            free(env[i]);
            env[i] = copy;
            return true;
        }
    }
    env[(*n)++] = copy;
    env[*n] = NULL;
    return true;
}

static size_t count(char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

/* The daemon's own ways into the database, kept from workers when they have
 * a worker_dsn of their own: passwords, password and service files, client
 * certificates, the user name (with trust, peer or a cert, the name is the
 * credential) and every connection string pgwake itself reads. Where the
 * server is (PGHOST, PGPORT, PGSSLMODE, PGSSLROOTCERT ...) stays. */
char *const spawn_credential_vars[] = {
    "PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGSSLKEY", "PGSSLCERT",
    "PGUSER", "PGWAKE_DSN", "DATABASE_URL", "POSTGRES_URL", NULL,
};

/* spawn_build_env builds a worker's environment: base (the daemon's environ)
 * minus the daemon's secrets (SMTP_PASSWORD, PGWAKE_CONTROL_TOKEN, always;
 * spawn_credential_vars when no_credentials) and the keys in drop, then
 * env_file, then environment, then extra (PGWAKE_*), a later entry replacing
 * an earlier one with the same key where it stands. Any list may be NULL.
 * Returns a malloc'd NULL-terminated vector for spawn_env_free, or NULL when
 * out of memory. */
char **spawn_build_env(char *const *base, char *const *env_file, char *const *environment,
                       char *const *extra, char *const *drop, bool no_credentials)
{
    static char *const secrets[] = {"SMTP_PASSWORD", "PGWAKE_CONTROL_TOKEN", NULL};
    char *const *layers[] = {env_file, environment, extra};
    size_t cap = count(base) + count(env_file) + count(environment) + count(extra) + 1;
    char **env = calloc(cap, sizeof *env);
    size_t n = 0;

    if (!env)
        return NULL;
    for (char *const *p = base; p && *p; p++)
        if (!in_list(*p, secrets) && !in_list(*p, drop) &&
            !(no_credentials && in_list(*p, spawn_credential_vars)) && !env_put(env, &n, *p))
            goto oom;
    for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++)
        for (char *const *p = layers[l]; p && *p; p++)
            if (!env_put(env, &n, *p))
                goto oom;
    return env;
oom:
    spawn_env_free(env);
    return NULL;
}

/* spawn_env_free frees a vector from spawn_build_env; NULL is fine. */
void spawn_env_free(char **env)
{
    for (char **p = env; p && *p; p++)
        free(*p);
    free(env);
}

/* -------------------------------------------------------------------- start */

/* The child's steps, for the exec-status report. */
typedef enum {
    SP_SETSID,
    SP_SETGROUPS,
    SP_SETGID,
    SP_SETUID,
    SP_PDEATHSIG,
    SP_PARENT_GONE,
    SP_FDS,
    SP_CHDIR,
    SP_EXEC,
    SP__COUNT
} SpawnStep;

static const char *const step_names[] = {
    [SP_SETSID] = "setsid",         [SP_SETGROUPS] = "setgroups", [SP_SETGID] = "setgid",
    [SP_SETUID] = "setuid",         [SP_PDEATHSIG] = "prctl PR_SET_PDEATHSIG",
    [SP_PARENT_GONE] = "getppid",   [SP_FDS] = "set up fds",      [SP_CHDIR] = "chdir",
    [SP_EXEC] = "exec",
};
_Static_assert(sizeof step_names / sizeof step_names[0] == SP__COUNT, "step names");

/* What the child writes on failure: one write below PIPE_BUF, so atomic. */
typedef struct ExecStatus {
    int step;       /* SpawnStep */
    int err;        /* errno */
    char what[248]; /* the object (path, directory), NUL-terminated, may be empty */
} ExecStatus;

/* Everything the child needs, prepared by the parent before fork. */
typedef struct ChildPlan {
    pid_t parent;    /* getpid() before fork, for the getppid() check */
    int devnull;     /* /dev/null for stdin (and for -1 out/err) */
    int status_fd;   /* write end of the exec-status pipe, >= STATUS_FD_MIN, CLOEXEC */
    bool drop_privs; /* setgroups/setgid/setuid to r->user */
    bool close_range_ok; /* the kernel has close_range (5.9+) */
    int max_fd;      /* without close_range: highest fd to close */
} ChildPlan;

/* child_fail reports the failed step and errno to the parent and exits 127.
 * Async-signal-safe: a byte loop instead of strncpy, one write, _exit. */
static _Noreturn void child_fail(const ChildPlan *p, SpawnStep step, int err, const char *what)
{
    ExecStatus st = {.step = (int)step, .err = err};
    for (size_t i = 0; what && what[i] && i < sizeof st.what - 1; i++)
        st.what[i] = what[i];
    ssize_t w = write(p->status_fd, &st, sizeof st);
    (void)w; /* nobody left to tell */
    _exit(127);
}

/* sys_close_range is close_range(2) without needing glibc 2.34; -1 with
 * ENOSYS where the headers or the kernel (before 5.9) lack it. */
static int sys_close_range(unsigned lo, unsigned hi)
{
#ifdef SYS_close_range
    return (int)syscall(SYS_close_range, lo, hi, 0u);
#else
    (void)lo, (void)hi;
    errno = ENOSYS;
    return -1;
#endif
}

/* child_close_from closes every fd >= lo except the status pipe; without
 * close_range, up to top (the highest fd the child can have). */
static int child_close_from(const ChildPlan *p, int lo, int top)
{
    if (p->close_range_ok)
        return sys_close_range((unsigned)lo, (unsigned)p->status_fd - 1) == 0 &&
                       sys_close_range((unsigned)p->status_fd + 1, ~0U) == 0
                   ? 0
                   : -1;
    for (int fd = lo; fd <= top; fd++) /* kernels before 5.9 */
        if (fd != p->status_fd)
            close(fd);
    return 0;
}

/* child_fds puts /dev/null, out, err and the wake fd on 0-3 and closes the
 * rest. Each source is first copied above STATUS_FD_MIN, so no dup2 can
 * clobber a source that sits on a target number, and dup2 always gets two
 * different fds, so fd 3 loses CLOEXEC even when the wake fd already was 3. */
static int child_fds(const SpawnReq *r, const ChildPlan *p)
{
    int src[4] = {p->devnull, r->out_fd >= 0 ? r->out_fd : p->devnull,
                  r->err_fd >= 0 ? r->err_fd : p->devnull, r->wake_fd};
    int hi[4], top = p->max_fd;

    for (int i = 0; i < 4; i++) {
        hi[i] = src[i] >= 0 ? fcntl(src[i], F_DUPFD_CLOEXEC, STATUS_FD_MIN) : -1;
        if (src[i] >= 0 && hi[i] < 0)
            return -1;
        top = hi[i] > top ? hi[i] : top;
    }
    for (int i = 0; i < 4; i++)
        if (hi[i] >= 0 && dup2(hi[i], i) < 0)
            return -1;
    /* stdio must block: a worker's printf must not meet EAGAIN. */
    for (int i = 0; i < 3; i++) {
        int fl = fcntl(i, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK))
            fcntl(i, F_SETFL, fl & ~O_NONBLOCK);
    }
    return child_close_from(p, hi[3] >= 0 ? 4 : 3, top);
}

/* child_run is the child between fork and execve. Signals are all blocked
 * (the parent blocked them before fork) so none of the daemon's handlers can
 * run here; they are reset to default and unblocked just before execve. The
 * daemon has other threads (alert_xfer.c, libcurl's resolver): a lock one
 * held at the fork stays held in the child, hence async-signal-safe calls only. */
static _Noreturn void child_run(const SpawnReq *r, const ChildPlan *p)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;

    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* fails harmlessly for SIGKILL, SIGSTOP */
    if (setsid() < 0)
        child_fail(p, SP_SETSID, errno, NULL);
    if (p->drop_privs) {
        if (setgroups((size_t)r->user->ngroups, r->user->groups) < 0)
            child_fail(p, SP_SETGROUPS, errno, NULL);
        if (setgid(r->user->gid) < 0)
            child_fail(p, SP_SETGID, errno, NULL);
        if (setuid(r->user->uid) < 0)
            child_fail(p, SP_SETUID, errno, NULL);
    }
    /* After the set-uid, which clears the death signal. It fires when the
     * parent *thread* ends: spawn from the loop thread, which lives as long
     * as the daemon. If the daemon died before the prctl, getppid() already
     * names someone else: give up rather than run orphaned. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        child_fail(p, SP_PDEATHSIG, errno, NULL);
    if (getppid() != p->parent)
        child_fail(p, SP_PARENT_GONE, ESRCH, NULL);
    if (child_fds(r, p) < 0)
        child_fail(p, SP_FDS, errno, NULL);
    if (r->directory && chdir(r->directory) < 0)
        child_fail(p, SP_CHDIR, errno, r->directory);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    static char *const empty_env[] = {NULL};
    execve(r->path, r->argv, r->envp ? r->envp : empty_env);
    child_fail(p, SP_EXEC, errno, r->path);
}

/* highest_fd is the fd bound for the close loop of kernels without
 * close_range: the highest fd open now, else the fd limit. Not tight: a
 * socket the alert transfer thread opens between this read and the fork
 * can reach the worker, as libcurl (7.88) opens sockets without CLOEXEC. */
static int highest_fd(void)
{
    int max = -1;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    if (d) {
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && atoi(e->d_name) > max)
                max = atoi(e->d_name);
        closedir(d);
    }
    if (max < 0) {
        long lim = sysconf(_SC_OPEN_MAX);
        max = lim > 0 && lim < 65536 ? (int)lim - 1 : 65535;
    }
    return max;
}

/* status_pipe makes the exec-status pipe: read end non-blocking, write end
 * moved to >= STATUS_FD_MIN, both CLOEXEC. false with errno. */
static bool status_pipe(int *rd, int *wr)
{
    int p[2];

    if (pipe2(p, O_CLOEXEC) < 0)
        return false;
    *wr = fcntl(p[1], F_DUPFD_CLOEXEC, STATUS_FD_MIN);
    int saved = errno;
    close(p[1]);
    if (*wr < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
        saved = *wr < 0 ? saved : errno;
        close(p[0]);
        if (*wr >= 0)
            close(*wr);
        errno = saved;
        return false;
    }
    *rd = p[0];
    return true;
}

/* spawn_start forks and execs r (see the file comment for the child's
 * steps). Returns the pid, which is also the worker's process group and
 * session id, and in *exec_status_fd the read end of the exec-status pipe
 * (non-blocking, CLOEXEC; the caller closes it) for spawn_exec_status; or -1
 * with err when no child was made. The caller's fds are left open. */
pid_t spawn_start(const SpawnReq *r, int *exec_status_fd, char *err, size_t errlen)
{
    static int has_close_range = -1; /* probed once: 1 yes, 0 no */
    ChildPlan p = {.parent = getpid()};
    int rd = -1;
    sigset_t all, old;

    *exec_status_fd = -1;
    if (!r->path || !r->argv || !r->argv[0]) {
        errf(err, errlen, "unable to start a worker: no command");
        return -1;
    }
    if (has_close_range < 0) /* closing an fd nobody has only tests the call */
        has_close_range = sys_close_range(~0U, ~0U) == 0;
    p.close_range_ok = has_close_range;
    p.drop_privs = r->user && r->user->set &&
                   !(geteuid() != 0 && r->user->uid == geteuid() && r->user->gid == getegid());
    p.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (p.devnull < 0) {
        int e = errno;
        errf(err, errlen, "unable to open /dev/null: %s", strerror(e));
        errno = e;
        return -1;
    }
    if (!status_pipe(&rd, &p.status_fd)) {
        int e = errno;
        errf(err, errlen, "unable to create a pipe: %s", strerror(e));
        close(p.devnull);
        errno = e;
        return -1;
    }
    if (!has_close_range)
        p.max_fd = highest_fd();
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        child_run(r, &p);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p.devnull);
    close(p.status_fd);
    if (pid < 0) {
        close(rd);
        errf(err, errlen, "unable to fork: %s", strerror(saved));
        errno = saved;
        return -1;
    }
    *exec_status_fd = rd;
    return pid;
}

/* spawn_exec_status reads the exec-status pipe: 1 = the exec succeeded (end
 * of file: the pipe closed on exec), 0 = not known yet, -1 = the child failed
 * before or at execve, with reason such as "exec /x/w: No such file or
 * directory", "chdir /x: Permission denied", "setuid: Operation not
 * permitted". The child then exits 127. SPAWN_EXEC_SHORT (also < 0) is
 * such a failure for the daemon's own shortage: it ran out of fds setting
 * up the child's (spawn_errno_ours). Closes nothing. */
int spawn_exec_status(int fd, char *reason, size_t n)
{
    ExecStatus st;
    ssize_t got;

    do
        got = read(fd, &st, sizeof st);
    while (got < 0 && errno == EINTR);
    if (got == 0)
        return 1;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (got < 0) {
        errf(reason, n, "unable to read the exec status: %s", strerror(errno));
        return -1;
    }
    if ((size_t)got != sizeof st || st.step < 0 || st.step >= SP__COUNT) {
        errf(reason, n, "unable to read the exec status: malformed report");
        return -1;
    }
    st.what[sizeof st.what - 1] = '\0';
    errf(reason, n, "%s%s%s: %s", step_names[st.step], st.what[0] ? " " : "", st.what,
            strerror(st.err));
    return st.step == SP_FDS && spawn_errno_ours(st.err) ? SPAWN_EXEC_SHORT : -1;
}

/* ------------------------------------------------------------------- others */

/* spawn_reap reaps one child that has ended, 0 when none has (-1 with
 * errno on failure). It looks first without reaping (WNOWAIT): while the
 * child is a zombie its pid cannot be reused, so when leader says it led a
 * worker's group, the group is killed (descendants included) before its
 * number can name someone else's. */
pid_t spawn_reap(int *status, bool (*leader)(pid_t pid, void *arg), void *arg)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return -1;
    if (si.si_pid == 0)
        return 0;
    if (leader && leader(si.si_pid, arg))
        kill(-si.si_pid, SIGKILL);
    pid_t pid;
    do
        pid = waitpid(si.si_pid, status, 0);
    while (pid < 0 && errno == EINTR);
    return pid;
}

/* spawn_errno_ours: was a failed pipe, socketpair, open or fork the
 * daemon's own shortage (fds, processes, memory) rather than the worker's
 * fault? Such a failure is retried after a backoff and never counted as a
 * crash: HTTP clients holding fds must not make a stage FATAL. */
bool spawn_errno_ours(int e)
{
    return e == EMFILE || e == ENFILE || e == EAGAIN || e == ENOMEM || e == ENOBUFS;
}

/* spawn_proc_start_time returns field 22 of /proc/PID/stat (start time in
 * clock ticks since boot), or -1: a pid and its start time name a process
 * for good, so a daemon recognises its own old worker and never kills a
 * recycled pid. The command name (field 2) may hold spaces and parentheses,
 * hence the parse from the last ')'. */
long long spawn_proc_start_time(pid_t pid)
{
    char path[64], buf[1024];

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *s = strrchr(buf, ')');
    if (!s)
        return -1;
    /* ") S ppid ...": find the space before each field from 3 up to 22 */
    for (int field = 3; field <= 22; field++) {
        s = strchr(s + 1, ' ');
        if (!s)
            return -1;
    }
    char *end;
    errno = 0;
    long long t = strtoll(s + 1, &end, 10);
    return errno || end == s + 1 ? -1 : t;
}

/* spawn_become_subreaper makes orphaned descendants of workers our children,
 * so they are reaped here and not by init; false with errno. */
bool spawn_become_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
}

/* spawn_ensure_std_fds opens /dev/null on each of fds 0-2 that is closed, at
 * start-up: otherwise the first pipe or socket would take fd 1 or 2 and log
 * lines would be written into it. */
void spawn_ensure_std_fds(void)
{
    int fd;
    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ; /* open returns the lowest free fd: this fills exactly the holes */
    if (fd > 2)
        close(fd);
}
