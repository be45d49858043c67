/* commands.h: the subcommands main.c dispatches to; each returns an exit code. */
#ifndef PGWAKE_COMMANDS_H
#define PGWAKE_COMMANDS_H

#include "cli.h"

int cmd_run(const CliOpts *o);
int cmd_migrate(const CliOpts *o);
int cmd_cron(const CliOpts *o);
int cmd_check(const CliOpts *o);
int cmd_enqueue(const CliOpts *o);
int cmd_notify(const CliOpts *o);
int cmd_status(const CliOpts *o);
int cmd_runs(const CliOpts *o);
int cmd_start(const CliOpts *o);
int cmd_stop(const CliOpts *o);
int cmd_restart(const CliOpts *o);
int cmd_import(const CliOpts *o);
int cmd_tasks(const CliOpts *o);
int cmd_retry(const CliOpts *o);
int cmd_cancel(const CliOpts *o);
int cmd_tail(const CliOpts *o);

#endif
