/* cmd_migrate.c: `pgwake migrate [--status]`. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "migrate.h"

/* cmd_migrate applies the built-in migrations, or lists them with --status. */
int cmd_migrate(const CliOpts *o)
{
    Config *cfg;
    int rc = cli_load_config(o, false, &cfg);
    if (rc)
        return rc;
    if (o->nargs) {
        fprintf(stderr, "pgwake migrate: unexpected argument \"%s\"\n", o->args[0]);
        cfg_free(cfg);
        return EXIT_USAGE;
    }
    PGconn *c = cli_connect(o, cfg);
    cfg_free(cfg);
    if (!c)
        return EXIT_RUNTIME;
    char err[ERR_LEN];
    bool ok = o->status ? migrate_status(c, stdout, err) : migrate_apply(c, stdout, err);
    if (!ok)
        fprintf(stderr, "pgwake migrate: %s\n", err);
    PQfinish(c);
    return ok ? EXIT_OK : EXIT_RUNTIME;
}
