/* commands.h: the subcommands main.c dispatches to; each returns an exit code. */
#ifndef PGWAKE_COMMANDS_H
#define PGWAKE_COMMANDS_H

#include "cli.h"
#include "mustcheck.h"

int cmd_run(const CliOpts *o) MUSTCHECK;
int cmd_migrate(const CliOpts *o) MUSTCHECK;
int cmd_cron(const CliOpts *o) MUSTCHECK;
int cmd_check(const CliOpts *o) MUSTCHECK;
int cmd_enqueue(const CliOpts *o) MUSTCHECK;
int cmd_notify(const CliOpts *o) MUSTCHECK;
int cmd_status(const CliOpts *o) MUSTCHECK;
int cmd_runs(const CliOpts *o) MUSTCHECK;
int cmd_start(const CliOpts *o) MUSTCHECK;
int cmd_stop(const CliOpts *o) MUSTCHECK;
int cmd_restart(const CliOpts *o) MUSTCHECK;
int cmd_import(const CliOpts *o) MUSTCHECK;
int cmd_tasks(const CliOpts *o) MUSTCHECK;
int cmd_retry(const CliOpts *o) MUSTCHECK;
int cmd_cancel(const CliOpts *o) MUSTCHECK;
int cmd_tail(const CliOpts *o) MUSTCHECK;

#endif
