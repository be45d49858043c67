/* main.c: argv -> subcommand table {name, fn, usage}; exit 0/1/2/3; no logic. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "log.h"

#ifndef PGWAKE_VERSION
#define PGWAKE_VERSION "0.1.0"
#endif

typedef struct Command {
    const char *name;
    int (*fn)(const CliOpts *o);
    const char *usage; /* first line: synopsis; the rest: what it does */
} Command;

static const Command commands[] = {
    {"run", cmd_run,
     "pgwake run [-c FILE] [-d DSN] [-v]\n"
     "  The daemon, in the foreground: LISTENs for work, starts, wakes and supervises\n"
     "  each stage's workers. Signals: SIGTERM/SIGINT stop gracefully (twice: at once),\n"
     "  SIGHUP reloads the configuration, SIGUSR1 reopens the worker log files.\n"},
    {"migrate", cmd_migrate,
     "pgwake migrate [--status] [-c FILE] [-d DSN]\n"
     "  Applies the migrations built into this binary, in order, once each, each in a\n"
     "  transaction, under an advisory lock. Idempotent. Refuses a database whose schema\n"
     "  is newer than this pgwake. --status lists each migration as applied or pending.\n"},
    {"cron", cmd_cron,
     "pgwake cron install|remove [-c FILE] [-d DSN]\n"
     "  Schedules (or unschedules) pgwake.expire_leases(), pgwake.retry_releases() and\n"
     "  pgwake.prune() with pg_cron (cron.schedule_in_database), so dead workers' leases\n"
     "  are released (and failed release_sql runs retried) even when no daemon runs:\n"
     "  every 5 seconds with pg_cron 1.5 or later, every minute before.\n"},
    {"check", cmd_check,
     "pgwake check [-c FILE] [-d DSN]\n"
     "  Read-only: validates the configuration, the database and its schema version, each\n"
     "  stage's command (exists, executable for its user), pg_cron and the alert settings.\n"
     "  One line per finding. Exit 0 nothing wrong (warnings printed), 1 a problem of the\n"
     "  environment, 2 of the configuration.\n"},
    {"enqueue", cmd_enqueue,
     "pgwake enqueue [-c FILE] [-d DSN] [--priority N] [--run ID] [--max-attempts N] STAGE [JSON]\n"
     "  Adds one task to STAGE with the JSON payload (default {}), prints its id.\n"},
    {"notify", cmd_notify,
     "pgwake notify [-c FILE] [-d DSN] STAGE|'*'\n"
     "  Sends NOTIFY pgwake_wake: a daemon serving STAGE (or every stage for '*')\n"
     "  recounts its work and wakes or starts workers.\n"},
    {"status", cmd_status,
     "pgwake status [--json] [-c FILE] [-d DSN]\n"
     "  Asks the running daemon (at http_listen) for its stages and workers: state, pid,\n"
     "  uptime, current task, pending work; --json prints the daemon's JSON. When the\n"
     "  daemon does not answer, shows what the database knows and says so.\n"
     "  Exit 0 every stage running, 1 a stage FATAL or stopped, 3 the daemon not running.\n"},
    {"runs", cmd_runs,
     "pgwake runs [--limit N] [--json] [-c FILE] [-d DSN]\n"
     "  The newest N runs (default 20) from the database: state, age, and a progress bar\n"
     "  per stage.\n"},
    {"tasks", cmd_tasks,
     "pgwake tasks [--stage S] [--state pending|leased|dead|done] [--run N] [--limit N]\n"
     "             [--before ID] [--json] [-c FILE] [-d DSN]\n"
     "  Tasks from the database, newest first (default 20): id, stage, state, attempts,\n"
     "  age, owner, last_error cut to the terminal. --before pages on (it is printed).\n"},
    {"retry", cmd_retry,
     "pgwake retry ID...|--stage S --dead [-c FILE] [-d DSN]\n"
     "  Makes dead (or waiting) tasks pending now, with one more attempt when they had\n"
     "  none left. Exit 2 for an unknown task or one that is leased or done.\n"},
    {"cancel", cmd_cancel,
     "pgwake cancel ID... [-c FILE] [-d DSN]\n"
     "  Pending tasks become dead with last_error \"cancelled\". Exit 2 for an unknown\n"
     "  task or one that is not pending.\n"},
    {"tail", cmd_tail,
     "pgwake tail STAGE [-n N] [-f] [-c FILE]\n"
     "  The last N lines (default 10) of STAGE's worker log on this host, rotated files\n"
     "  included; -f follows new lines (and the file across a rotation) until interrupted.\n"},
    {"start", cmd_start,
     "pgwake start STAGE|all [-c FILE]\n"
     "  Starts a stopped or FATAL stage of the running daemon (resets its crash count).\n"
     "  Sends control_token when the configuration has one. Exit 1 when the daemon is\n"
     "  unreachable, 2 for a stage it does not serve.\n"},
    {"stop", cmd_stop,
     "pgwake stop STAGE|all [-c FILE]\n"
     "  Stops a stage's workers (each after its current task) and keeps the stage\n"
     "  stopped, across daemon restarts too, until `pgwake start`.\n"},
    {"restart", cmd_restart,
     "pgwake restart STAGE|all [-c FILE]\n"
     "  Rolling restart: replaces the stage's workers one at a time, each after its\n"
     "  current task (e.g. after a deploy).\n"},
    {"import", cmd_import,
     "pgwake import supervisord|pm2 FILE\n"
     "  Writes a pgwake configuration on stdout from a supervisord .conf (its [program:x]\n"
     "  sections) or a PM2 ecosystem file in JSON (apps): one [stage:x] each, with command,\n"
     "  directory, user, environment, max_workers, stop_timeout, max_restarts, and a ;\n"
     "  comment for every setting not carried over, saying why. FILE - reads stdin.\n"
     "  Exit 2 with FILE:LINE and what is wrong for input it cannot read. PM2 files must\n"
     "  be strict JSON; node turns a JavaScript one (ecosystem.config.js) into that:\n"
     "    node -e 'console.log(JSON.stringify(require(process.argv[1]), null, 2))' \\\n"
     "      \"$PWD/ecosystem.config.js\" > ecosystem.json\n"},
};

static const char general_help[] =
    "pgwake %s: starts, wakes and supervises PostgreSQL-backed stage workers.\n"
    "\n"
    "usage: pgwake COMMAND [options] [arguments]\n"
    "\n"
    "commands:\n"
    "%s"
    "  version             print the version\n"
    "  help [COMMAND]      this text, or one command's\n"
    "\n"
    "options (after the command): -c FILE configuration, -d DSN database, -v more logging\n"
    "configuration: -c FILE, else $PGWAKE_CONF, else /etc/pgwake/pgwake.conf\n"
    "database: -d DSN, else $PGWAKE_DSN, else dsn in the configuration, else $DATABASE_URL,\n"
    "  else $POSTGRES_URL, else libpq's defaults ($PGHOST, $PGDATABASE, ...)\n"
    "\n"
    "exit codes: 0 success; 1 runtime failure (database unreachable, host lock held);\n"
    "  2 usage or configuration error; status: 1 a stage FATAL or stopped, 3 daemon not running\n";

static const Command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int print_help(const char *name, FILE *out)
{
    if (name) {
        const Command *c = find_command(name);
        if (!c) {
            fprintf(stderr, "pgwake: no command \"%s\" (see pgwake help)\n", name);
            return EXIT_USAGE;
        }
        fputs(c->usage, out);
        return EXIT_OK;
    }
    char list[2048] = "";
    size_t n = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const char *u = commands[i].usage;
        const char *nl = strchr(u, '\n');
        n += (size_t)snprintf(list + n, sizeof list - n, "  %.*s\n", (int)(nl - u - 7), u + 7);
    }
    fprintf(out, general_help, PGWAKE_VERSION, list);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *lvl = getenv("PGWAKE_LOG_LEVEL");
    if (lvl && !log_level_parse(lvl, &log_level))
        fprintf(stderr, "pgwake: ignoring PGWAKE_LOG_LEVEL=%s (use error, warning, info, debug)\n", lvl);
    if (argc < 2) {
        print_help(NULL, stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        printf("pgwake %s\n", PGWAKE_VERSION);
        return EXIT_OK;
    }
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return print_help(argc > 2 ? argv[2] : NULL, stdout);
    const Command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "pgwake: unknown command \"%s\" (see pgwake help)\n", name);
        return EXIT_USAGE;
    }
    CliOpts o;
    char err[ERR_LEN];
    if (!cli_parse(argc - 1, argv + 1, &o, err, sizeof err)) {
        fprintf(stderr, "pgwake %s: %s\n%s", name, err, c->usage);
        free(o.args);
        return EXIT_USAGE;
    }
    int rc = o.help ? print_help(name, stdout) : c->fn(&o);
    free(o.args);
    return rc;
}
