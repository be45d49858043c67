/* cli.c: option parsing, configuration lookup and connection shared by the
 * subcommands; every error names the thing that is wrong and what to do. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errfmt.h"
#include "log.h"

enum { OPT_JSON = 256, OPT_STATUS, OPT_LIMIT, OPT_PRIORITY, OPT_RUN, OPT_MAX_ATTEMPTS,
       OPT_STAGE, OPT_STATE, OPT_DEAD, OPT_BEFORE };

/* cli_long_arg parses a whole decimal number within [min, max]. */
bool cli_long_arg(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* cli_parse reads the options that follow a subcommand; positional arguments
 * are left in o->args. Options may come before or after them. */
bool cli_parse(int argc, char **argv, CliOpts *o, char *err, size_t errlen)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"dsn", required_argument, NULL, 'd'},
        {"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"json", no_argument, NULL, OPT_JSON},    {"status", no_argument, NULL, OPT_STATUS},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"priority", required_argument, NULL, OPT_PRIORITY},
        {"run", required_argument, NULL, OPT_RUN},
        {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
        {"stage", required_argument, NULL, OPT_STAGE}, {"state", required_argument, NULL, OPT_STATE},
        {"dead", no_argument, NULL, OPT_DEAD},         {"before", required_argument, NULL, OPT_BEFORE},
        {"lines", required_argument, NULL, 'n'},       {"follow", no_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->limit = 20;
    o->lines = 10;
    o->max_attempts = 5;
    optind = 0; /* 0, not 1: also forgets a half-parsed option group */
    opterr = 0;
    o->args = calloc((size_t)argc + 1, sizeof *o->args);
    if (!o->args)
        return errf(err, errlen, "out of memory");
    /* "+" stops getopt at each positional argument: take it and go on, so
     * options may follow arguments (pgwake cron install -d DSN). */
    while (optind < argc) {
        int c = getopt_long(argc, argv, "+:c:d:vhn:f", longopts, NULL);
        if (c == -1) {
            if (optind < argc && strcmp(argv[optind - 1], "--") == 0)
                break;
            if (optind < argc)
                o->args[o->nargs++] = argv[optind++];
            continue;
        }
        switch (c) {
        case 'c': o->conf_path = optarg; break;
        case 'd': o->dsn = optarg; break;
        case 'v': log_level = log_level < LOG_NOISE ? log_level + 1 : LOG_NOISE; break;
        case 'h': o->help = true; break;
        case OPT_JSON: o->json = true; break;
        case OPT_STATUS: o->status = true; break;
        case OPT_STAGE: o->stage = optarg; break;
        case OPT_STATE: o->state = optarg; break;
        case OPT_DEAD: o->dead = true; break;
        case 'f': o->follow = true; break;
        case OPT_BEFORE:
            if (!cli_long_arg(optarg, 1, __LONG_MAX__, &o->before))
                return errf(err, errlen, "--before wants a task id, not \"%s\"", optarg);
            break;
        case 'n':
            if (!cli_long_arg(optarg, 1, 5000, &o->lines))
                return errf(err, errlen, "-n wants a number of lines from 1 to 5000, not \"%s\"", optarg);
            break;
        case OPT_LIMIT:
            if (!cli_long_arg(optarg, 1, 100000, &o->limit))
                return errf(err, errlen, "--limit wants a number from 1 to 100000, not \"%s\"", optarg);
            break;
        case OPT_PRIORITY:
            if (!cli_long_arg(optarg, -2147483647L, 2147483647L, &o->priority))
                return errf(err, errlen, "--priority wants an integer, not \"%s\"", optarg);
            break;
        case OPT_RUN:
            if (!cli_long_arg(optarg, 1, __LONG_MAX__, &o->run_id))
                return errf(err, errlen, "--run wants a run id, not \"%s\"", optarg);
            break;
        case OPT_MAX_ATTEMPTS:
            if (!cli_long_arg(optarg, 1, 1000000, &o->max_attempts))
                return errf(err, errlen, "--max-attempts wants a number from 1, not \"%s\"", optarg);
            break;
        case ':':
            if (optopt >= 256) {
                for (const struct option *lo = longopts; lo->name; lo++)
                    if (lo->val == optopt)
                        errf(err, errlen, "option --%s needs a value", lo->name);
            } else {
                errf(err, errlen, "option -%c needs a value", optopt);
            }
            return false;
        default:
            if (optopt && optopt < 256)
                return errf(err, errlen, "unknown option \"-%c\"", optopt);
            return errf(err, errlen, "unknown option \"%s\"", argv[optind - 1]);
        }
    }
    while (optind < argc)
        o->args[o->nargs++] = argv[optind++];
    return true;
}

static const char *real_getenv(const char *name) { return getenv(name); }

/* cli_load_config loads the configuration when one is named or found; returns
 * an exit code. A command that does not require one runs without it. */
int cli_load_config(const CliOpts *o, bool required, Config **out)
{
    char err[ERR_LEN] = "";
    *out = NULL;
    const char *path = cfg_find_path(o->conf_path, err, sizeof err);
    if (!path) {
        if (!required)
            return EXIT_OK;
        fprintf(stderr, "pgwake: %s\n", err);
        return EXIT_USAGE;
    }
    *out = cfg_load(path, err, sizeof err);
    if (!*out) {
        fprintf(stderr, "pgwake: %s\n", err);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* cli_connect opens a blocking connection for a one-shot command; NULL after
 * printing why, with the password masked and a bad string described, never
 * quoted (dsn.c). */
PGconn *cli_connect(const CliOpts *o, const Config *cfg)
{
    const char *dsn;
    char err[ERR_LEN];
    if (!dsn_resolve(o->dsn, cfg ? cfg->dsn : NULL, real_getenv, &dsn, err, sizeof err)) {
        fprintf(stderr, "pgwake: %s\n", err);
        return NULL;
    }
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {dsn, "pgwake", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(err, sizeof err, "%s", c ? PQerrorMessage(c) : "out of memory\n");
        dsn_scrub(dsn, err, sizeof err);
        fprintf(stderr, "pgwake: unable to connect to the database: %s"
                        "(set -d DSN, PGWAKE_DSN or dsn in the configuration)\n", err);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* cli_open_db is what one-shot database commands start with: the optional
 * configuration (for its dsn), then a connection. NULL with *rc set (2 for a
 * bad configuration or connection string, 1 for an unreachable database). */
PGconn *cli_open_db(const CliOpts *o, int *rc)
{
    Config *cfg;
    const char *dsn;
    char err[ERR_LEN];
    *rc = cli_load_config(o, false, &cfg);
    if (*rc)
        return NULL;
    /* A bad connection string is a usage error (2), an unreachable server a runtime one. */
    if (!dsn_resolve(o->dsn, cfg ? cfg->dsn : NULL, real_getenv, &dsn, err, sizeof err)) {
        fprintf(stderr, "pgwake: %s\n", err);
        cfg_free(cfg);
        *rc = EXIT_USAGE;
        return NULL;
    }
    PGconn *c = cli_connect(o, cfg);
    cfg_free(cfg);
    *rc = c ? EXIT_OK : EXIT_RUNTIME;
    return c;
}
