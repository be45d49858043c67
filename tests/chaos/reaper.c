/*
 * reaper.c - runs a command as a child subreaper, for the chaos suite.
 *
 *   reaper [-l LOG] [-g GRACE_MS] [-k KEEPFILE] COMMAND [ARG...]
 *
 * PID 1 of the test machines does not reap orphans, and the chaos scenario
 * SIGKILLs the daemon (itself a subreaper) on purpose: its workers are
 * orphaned then. Under this wrapper they are reparented here instead of to
 * PID 1, reaped, and written to LOG, one line each: "orphan PID NAME exit N"
 * or "orphan PID NAME signal N" (the main command's own end is "main PID
 * NAME ..."). So no zombie of the run can outlive it, and the scenario can
 * count what was orphaned.
 *
 * When COMMAND ends, descendants still running get GRACE_MS (default 5000)
 * to end; any left after that is a leak: named on stderr ("reaper: left
 * running: PID NAME"), SIGKILLed (they are ours) and reaped, and the exit
 * code is 1 (unless COMMAND already failed). Pids listed in KEEPFILE (one a
 * line, read at that moment) are meant to outlive the run and are left alone:
 * a PostgreSQL that the scenario restarted with pg_ctl for the test runner
 * is a descendant of ours. KEEPFILE is opened (created) at start and read
 * through that descriptor, so it may be removed with the run's folder. Otherwise the exit code is COMMAND's (128 + N
 * after signal N). SIGTERM, SIGINT and SIGHUP are passed on to COMMAND.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t main_pid;

static void forward(int sig)
{
    if (main_pid > 0)
        kill(main_pid, sig);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * reap_one waits for one child (blocking or not), logs it with its name (read
 * while it is still a zombie) and returns its pid: 0 when none has ended,
 * -1 when there is no child left.
 */
static pid_t reap_one(FILE *log, int block, pid_t main_child, int *main_st)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_ALL, 0, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) < 0)
        return errno == EINTR ? 0 : -1;
    pid_t pid = si.si_pid;
    if (pid == 0)
        return 0;
    char path[64], name[64] = "?";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(name, sizeof name, f))
            name[strcspn(name, "\n")] = '\0';
        fclose(f);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (pid == main_child)
        *main_st = st;
    if (log) {
        const char *kind = pid == main_child ? "main" : "orphan";
        if (WIFSIGNALED(st))
            fprintf(log, "%s %d %s signal %d\n", kind, (int)pid, name, WTERMSIG(st));
        else
            fprintf(log, "%s %d %s exit %d\n", kind, (int)pid, name, WEXITSTATUS(st));
        fflush(log);
    }
    return pid;
}

/*
 * The keep file is opened at start-up and read through that descriptor, so
 * that it can still be read after the scenario removed its folder.
 */
static int keep_fd = -1;

/* kept says whether pid is listed in the keep file. */
static int kept(long pid)
{
    char buf[4096];
    ssize_t n = keep_fd < 0 ? -1 : pread(keep_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (char *s = buf, *end;; s = end) {
        long p = strtol(s, &end, 10);
        if (end == s)
            return 0;
        if (p == pid)
            return 1;
    }
}

/* read_stat gives a process's state, parent pid and name from /proc/PID/stat. */
static int read_stat(const char *pid, char *state, pid_t *ppid, char *name, size_t namesz)
{
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open)
        return -1;
    snprintf(name, namesz, "%.*s", (int)(close - open - 1), open + 1);
    int pp;
    if (sscanf(close + 1, " %c %d", state, &pp) != 2)
        return -1;
    *ppid = pp;
    return 0;
}

/* kill_leftovers SIGKILLs and names our children still running (zombies are
 * left to waitpid, kept ones alone); returns how many. */
static int kill_leftovers(void)
{
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        pid_t ppid;
        char state, name[64];
        if (read_stat(e->d_name, &state, &ppid, name, sizeof name) == 0 && ppid == getpid() &&
            state != 'Z' && !kept(atol(e->d_name))) {
            fprintf(stderr, "reaper: left running: %s %s\n", e->d_name, name);
            kill(atoi(e->d_name), SIGKILL);
            n++;
        }
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    const char *logpath = NULL, *keepfile = NULL;
    long grace_ms = 5000;
    int opt;
    while ((opt = getopt(argc, argv, "+l:g:k:")) != -1) {
        if (opt == 'l')
            logpath = optarg;
        else if (opt == 'g')
            grace_ms = atol(optarg);
        else if (opt == 'k')
            keepfile = optarg;
        else
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: reaper [-l LOG] [-g GRACE_MS] [-k KEEPFILE] COMMAND [ARG...]\n");
        return 2;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("reaper: PR_SET_CHILD_SUBREAPER");
        return 1;
    }
    if (keepfile && (keep_fd = open(keepfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
        fprintf(stderr, "reaper: %s: %s\n", keepfile, strerror(errno));
        return 1;
    }
    FILE *log = logpath ? fopen(logpath, "ae") : NULL;
    if (logpath && !log) {
        fprintf(stderr, "reaper: %s: %s\n", logpath, strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    pid_t child = fork();
    if (child < 0) {
        perror("reaper: fork");
        return 1;
    }
    if (child == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "reaper: %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    main_pid = child;

    int code = -1, main_st = 0;
    long long deadline = 0;
    int leaked = 0;
    for (;;) {
        pid_t p = reap_one(log, code < 0, child, &main_st);
        if (p < 0)
            break; /* no child left */
        if (p == child) {
            code = WIFSIGNALED(main_st) ? 128 + WTERMSIG(main_st) : WEXITSTATUS(main_st);
            main_pid = 0;
            deadline = now_ms() + grace_ms;
        }
        if (p > 0 || code < 0)
            continue;
        /* The command is over and some child of ours still runs (or is kept). */
        if (now_ms() >= deadline) {
            int n = kill_leftovers();
            if (n == 0) {
                while (reap_one(log, 0, child, &main_st) > 0)
                    ; /* zombies the scan skipped; kept ones go on without us */
                break;
            }
            leaked += n; /* their own orphans come to us in turn and are scanned again */
            deadline = now_ms() + 200;
        }
        usleep(20000);
    }
    if (log)
        fclose(log);
    if (leaked && code == 0) {
        fprintf(stderr, "reaper: %d process(es) of the run outlived it\n", leaked);
        return 1;
    }
    return code < 0 ? 1 : code;
}
