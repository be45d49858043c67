/* spawn.h: worker process creation (fork + execve) and what it needs from the
 * parent: user lookup, PATH search, environment, exec-failure reporting, proc
 * start times, subreaper. No event loop in here. */
#ifndef PGWAKE_SPAWN_H
#define PGWAKE_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mustcheck.h"

#define SPAWN_MAX_GROUPS 64 /* supplementary groups a worker user may have */

/* A user looked up in the parent (the child may not call getpwnam). */
typedef struct SpawnUser {
    bool set;                        /* looked up: the child drops to it */
    uid_t uid;
    gid_t gid;                       /* primary group */
    int ngroups;                     /* entries in groups (primary included) */
    gid_t groups[SPAWN_MAX_GROUPS];  /* supplementary groups, from getgrouplist */
    char *home;                      /* malloc'd pw_dir; spawn_user_free frees it */
} SpawnUser;

bool spawn_lookup_user(const char *name, SpawnUser *out, char *err, size_t errlen) MUSTCHECK;
void spawn_user_free(SpawnUser *u);

char *spawn_resolve_path(const char *argv0, const char *directory, const char *path_env,
                         char *err, size_t errlen) MUSTCHECK;

extern char *const spawn_credential_vars[];
char **spawn_build_env(char *const *base, char *const *env_file, char *const *environment,
                       char *const *extra, char *const *drop, bool no_credentials) MUSTCHECK;
void spawn_env_free(char **env);

/* What to start; every fd stays the caller's (spawn_start closes none). */
typedef struct SpawnReq {
    const char *path;       /* from spawn_resolve_path */
    char *const *argv;      /* NULL-terminated */
    char *const *envp;      /* NULL-terminated; NULL = empty environment */
    const char *directory;  /* chdir (as the user) before exec, or NULL */
    const SpawnUser *user;  /* drop to it, or NULL */
    int wake_fd;            /* child's end of the socketpair -> fd 3; -1 = none */
    int out_fd, err_fd;     /* -> fds 1 and 2, made blocking; -1 = /dev/null */
} SpawnReq;

pid_t spawn_start(const SpawnReq *r, int *exec_status_fd, char *err, size_t errlen) MUSTCHECK;
bool spawn_errno_ours(int e);
pid_t spawn_reap(int *status, bool (*leader)(pid_t pid, void *arg), void *arg);
#define SPAWN_EXEC_SHORT (-2) /* spawn_exec_status: failed for the daemon's fd shortage */
int spawn_exec_status(int fd, char *reason, size_t n) MUSTCHECK;

long long spawn_proc_start_time(pid_t pid) MUSTCHECK;
bool spawn_become_subreaper(void) MUSTCHECK;
void spawn_ensure_std_fds(void);

#endif
