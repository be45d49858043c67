/* cmd_run.c: `pgwake run`: load the configuration, then hand over to the daemon. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "daemon.h"

/* cmd_run runs the daemon in the foreground until SIGTERM/SIGINT. */
int cmd_run(const CliOpts *o)
{
    if (o->nargs) {
        fprintf(stderr, "pgwake run: unexpected argument \"%s\"\n", o->args[0]);
        return EXIT_USAGE;
    }
    Config *cfg;
    int rc = cli_load_config(o, true, &cfg);
    if (rc)
        return rc;
    /* A string libpq cannot parse is a configuration error, said once here
     * in our words, rather than libpq's (which quote it) on every retry. */
    const char *dsn;
    char err[ERR_LEN];
    if (!dsn_resolve(o->dsn, cfg->dsn, (GetenvFn)getenv, &dsn, err, sizeof err)) {
        fprintf(stderr, "pgwake run: %s\n", err);
        cfg_free(cfg);
        return EXIT_USAGE;
    }
    return daemon_run(cfg, cfg->path, o->dsn);
}
