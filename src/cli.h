/* cli.h: what every subcommand shares: options after the subcommand (-c, -d, -v),
 * the configuration lookup, the DSN order of SPEC section 6, a blocking connection. */
#ifndef PGWAKE_CLI_H
#define PGWAKE_CLI_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "config.h"
#include "dsn.h"
#include "mustcheck.h"

/* Exit codes of SPEC section 6. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_NOT_RUNNING = 3 };

typedef struct CliOpts {
    const char *conf_path; /* -c FILE */
    const char *dsn;       /* -d DSN */
    bool json;             /* --json (status) */
    bool status;           /* --status (migrate) */
    bool help;             /* -h / --help */
    long limit;            /* --limit N (runs) */
    long priority;         /* --priority N (enqueue) */
    long run_id;           /* --run ID (enqueue), 0 = none */
    long max_attempts;     /* --max-attempts N (enqueue) */
    const char *stage;     /* --stage S (tasks, retry) */
    const char *state;     /* --state S (tasks) */
    bool dead;             /* --dead (retry) */
    long before;           /* --before ID (tasks), 0 = newest */
    long lines;            /* -n N (tail) */
    bool follow;           /* -f (tail) */
    int nargs;             /* positional arguments left */
    char **args;
} CliOpts;

bool cli_parse(int argc, char **argv, CliOpts *o, char *err, size_t errlen) MUSTCHECK;
int cli_load_config(const CliOpts *o, bool required, Config **out) MUSTCHECK;
PGconn *cli_connect(const CliOpts *o, const Config *cfg) MUSTCHECK;
PGconn *cli_open_db(const CliOpts *o, int *rc) MUSTCHECK;
bool cli_long_arg(const char *s, long min, long max, long *out) MUSTCHECK;

#endif
