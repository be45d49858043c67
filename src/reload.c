/* reload.c: SIGHUP. Parse the new file whole, keep what applies only at the
 * next start (host, http_listen, lock_file), diff stage by stage: removed
 * stages stop, added ones start, changed ones restart their workers or take
 * the new limits live. An old configuration lives on while a removed stage
 * that points into it still has workers. */
#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "release_sql.h"

static void keep_running_values(Config *n, const Config *old)
{
    /* host, http_listen and lock_file apply at the next start only. */
    char **fields[] = {&n->host, &n->http_listen, &n->http_host, &n->lock_file};
    char *const olds[] = {old->host, old->http_listen, old->http_host, old->lock_file};
    n->http_port = old->http_port;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char *copy = olds[i] ? strdup(olds[i]) : NULL;
        if (olds[i] && !copy)
            continue;
        free(*fields[i]);
        *fields[i] = copy;
    }
}

static void retire_config(Daemon *d, Config *old)
{
    for (int i = 0; i < d->nstages; i++)
        if (d->stages[i]->cfg == old) {
            Config **r = realloc(d->retired, (size_t)(d->nretired + 1) * sizeof *r);
            if (!r)
                break;
            d->retired = r;
            d->retired[d->nretired++] = old;
            return;
        }
    cfg_free(old);
}

/* task_timeout applies live: the stage's workers take it for their next claims. */
static void push_task_timeout(Daemon *d, const StageConf *sc)
{
    char tt[32];
    snprintf(tt, sizeof tt, "%lld milliseconds", (long long)sc->task_timeout_ms);
    const char *p[] = {sc->name, d->cfg->host, tt};
    if (!db_query(d->db, "SELECT pgwake.set_task_timeout($1, $2, $3::interval)", 3, p, DBQ_RETRY,
                  NULL, NULL))
        log_error("%s: out of memory queueing the new task_timeout", sc->name);
}

/* daemon_reload applies SIGHUP: the new file is parsed whole first (a bad
 * one is logged and the running configuration kept), then each stage gets the
 * part of the change that concerns it. */
void daemon_reload(Daemon *d)
{
    char err[ERR_LEN];
    Config *n = cfg_load(d->conf_path, err, sizeof err);
    if (!n) {
        log_error("reload failed, keeping the running configuration: %s", err);
        return;
    }
    Config *old = d->cfg;
    unsigned g = cfg_global_diff(old, n);
    if (g & CFG_DIFF_NEEDS_RESTART)
        log_warn("reload: host, http_listen or lock_file changed: restart needed for them to apply");
    keep_running_values(n, old);
    free(d->worker_dsn);
    d->worker_dsn = strdup(n->worker_dsn ? n->worker_dsn : d->dsn);
    d->cfg = n;
    for (int i = 0; i < d->nstages; i++) {
        Stage *s = d->stages[i];
        if (s->removed)
            continue;
        const StageConf *sc = cfg_stage(n, s->name);
        if (!sc) {
            log_info("%s: removed from the configuration: stopping its workers", s->name);
            s->removed = true;
            stage_stop_all(s, "stage removed");
            continue;
        }
        unsigned diff = cfg_stage_diff(s->conf, sc);
        if (g & CFG_DIFF_RESTART_ALL)
            diff |= CFG_DIFF_RESTART;
        if (sc->task_timeout_ms != s->conf->task_timeout_ms)
            push_task_timeout(d, sc);
        stage_apply_conf(s, sc, n, diff);
    }
    for (const StageConf *sc = n->stages; sc; sc = sc->next) {
        if (daemon_stage(d, sc->name))
            continue;
        if (!daemon_add_stage(d, sc, n, err, sizeof err)) {
            log_error("%s: unable to add the stage: %s", sc->name, err);
            continue;
        }
        log_info("%s: stage added", sc->name);
        Stage *s = d->stages[d->nstages - 1];
        if (db_ready(d->db)) {
            stage_record_state(s);
            stage_hint(s, false);
        }
    }
    if (d->alerter)
        alert_set_conf(d->alerter, &n->alerts);
    release_sql_reload(d->rsql);
    retire_config(d, old);
    daemon_maybe_finish(d); /* a removed stage with no worker left is freed now */
    log_info("configuration reloaded from %s", d->conf_path);
}

