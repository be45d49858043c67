/* config.h: the configuration file of SPEC section 7, loaded into plain data.
 * cfg_load parses a whole file into a new Config (or fails with one error line);
 * reload compares two Configs with cfg_stage_diff / cfg_global_diff. */
#ifndef PGWAKE_CONFIG_H
#define PGWAKE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mustcheck.h"

#define ERR_LEN 512 /* size of every caller-supplied err buffer */

/* http_listen's default, which the CLI also calls when it finds no file. */
#define CFG_HTTP_HOST_DEFAULT "127.0.0.1"
#define CFG_HTTP_PORT_DEFAULT 6464

typedef struct StageConf {
    char *name;                  /* from [stage:NAME], see stage_name_valid */
    int line;                    /* line of the section header */
    char *command;               /* as written in the file (continuations joined) */
    char **argv;                 /* command split by shell quoting rules, never NULL */
    int min_workers;             /* kept running even without work; default 0 */
    int max_workers;             /* local ceiling, at least 1; default 1 */
    int max_workers_total;       /* ceiling across every daemon, 0 = no cap */
    int64_t idle_timeout_ms;     /* idle worker gets S after this */
    int64_t lease_ms;            /* lease interval passed to claim */
    int64_t heartbeat_interval_ms;
    int64_t heartbeat_timeout_ms; /* interval < timeout <= lease, checked at load */
    int64_t restart_delay_ms;     /* first backoff, doubling ... */
    int64_t restart_delay_max_ms; /* ... up to this */
    int64_t restart_window_ms;    /* crash tally window; also resets the backoff */
    int64_t stop_timeout_ms;      /* after S, before SIGTERM */
    int64_t kill_timeout_ms;      /* after SIGTERM, before SIGKILL */
    int max_restarts;             /* crashes within restart_window that make FATAL; 0 = never */
    int64_t memory_limit;         /* bytes of RSS, 0 = none */
    int64_t task_timeout_ms;      /* a lease's bound from its claim (timeout_at), 0 = none */
    char *user;                   /* NULL = the daemon's user */
    char *directory;              /* absolute (relative ones resolved against Config.dir); NULL = unset */
    char **environment;           /* NULL-terminated "K=V" list, NULL when unset */
    char *pending_sql;            /* NULL unless the stage counts its own work */
    char *release_sql;            /* with pending_sql: run with $1 = worker id at its end */
    int release_sql_line;         /* its line in the file, for errors found on the database */
    int claim_batch;              /* PGWAKE_CLAIM_BATCH, at least 1 */
    struct StageConf *next;       /* file order */
} StageConf;

typedef struct AlertConf {
    char *email_to;              /* or $HEARTBEAT_MONITOR_ALERT_EMAIL */
    char *smtp_url;              /* or built from $SMTP_HOST/$SMTP_PORT */
    char *smtp_user;             /* or $SMTP_USER */
    char *smtp_password;         /* or $SMTP_PASSWORD; secret */
    char *email_from;            /* or $EMAIL_FROM */
    char *webhook_url;
    int64_t min_interval_ms;     /* rate limit per kind of alert */
    int64_t batch_window_ms;     /* dead workers found within it share a message */
    int64_t db_down_alert_ms;    /* database unreachable this long is alerted */
} AlertConf;

typedef struct Config {
    char *path;                  /* realpath of the file */
    char *dir;                   /* its folder */
    char *dsn;                   /* NULL when unset (see SPEC section 6 for the order) */
    char *worker_dsn;            /* NULL = workers get the daemon's dsn */
    char *host;                  /* never NULL: defaults to gethostname() */
    char *log_dir;               /* absolute */
    char *http_listen;           /* HOST:PORT as written: messages and reload diffs */
    char *http_host;             /* its HOST, never NULL; a [v6] without the brackets */
    unsigned short http_port;    /* its PORT */
    char *control_token;         /* NULL = control calls need no token */
    char *env_file;              /* absolute, NULL when unset */
    char **env_file_vars;        /* its "K=V" lines, read at load; NULL when none */
    char *lock_file;             /* absolute, never NULL: defaulted at load */
    int64_t log_max_bytes;
    int log_backups;
    int64_t recount_interval_ms; /* 0 = never */
    int64_t maintenance_poll_ms;
    AlertConf alerts;
    StageConf *stages;           /* file order */
    int nstages;
} Config;

/* Bits returned by cfg_stage_diff and cfg_global_diff. */
enum {
    CFG_DIFF_LIVE = 1u << 0,          /* a key that applies without touching workers */
    CFG_DIFF_RESTART = 1u << 1,       /* this stage's workers restart one at a time */
    CFG_DIFF_NEEDS_RESTART = 1u << 2, /* host, http_listen, lock_file: log "restart needed" */
    CFG_DIFF_RESTART_ALL = 1u << 3,   /* worker dsn or env_file contents: every stage restarts */
};

const char *cfg_find_path(const char *opt_c, char *err, size_t errlen) MUSTCHECK;
Config *cfg_load(const char *path, char *err, size_t errlen) MUSTCHECK;
void cfg_free(Config *cfg);
const StageConf *cfg_stage(const Config *cfg, const char *name);
bool stage_name_valid(const char *name);
unsigned cfg_stage_diff(const StageConf *old, const StageConf *new_);
unsigned cfg_global_diff(const Config *old, const Config *new_);
bool cfg_read_env_file(const char *path, char ***out, char *err, size_t errlen) MUSTCHECK;
bool cfg_file_safe(int fd, const char *path, char *err, size_t errlen) MUSTCHECK;
void cfg_render_example(FILE *out);

#endif
