/* cmd_migrate.c: `pgwake migrate [--status]`. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "migrate.h"

/* cmd_migrate applies the built-in migrations, or lists them with --status. */
int cmd_migrate(const CliOpts *o)
{
    if (o->nargs) {
        fprintf(stderr, "pgwake migrate: unexpected argument \"%s\"\n", o->args[0]);
        return EXIT_USAGE;
    }
    int rc;
    PGconn *c = cli_open_db(o, &rc);
    if (!c)
        return rc;
    char err[ERR_LEN];
    bool ok = o->status ? migrate_status(c, stdout, err, sizeof err)
                        : migrate_apply(c, stdout, err, sizeof err);
    if (!ok)
        fprintf(stderr, "pgwake migrate: %s\n", err);
    PQfinish(c);
    return ok ? EXIT_OK : EXIT_RUNTIME;
}
