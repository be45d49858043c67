/* cmd_ctl.c: `pgwake start|stop|restart STAGE|all`: one control call to the
 * running daemon (POST /stages/NAME/ACTION on its http_listen, with the
 * control token when the configuration has one); prints what it did. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "httpcli.h"

/* Prints the daemon's answer: one line per stage it acted on. */
static void print_result(const char *action, json_t *j)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(j, "stages"), i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *state = json_string_value(json_object_get(s, "state"));
        size_t nw = json_array_size(json_object_get(s, "workers"));
        if (strcmp(action, "restart") == 0)
            printf("%s: %s, restarting %zu worker(s) one at a time\n", name ? name : "?",
                   state ? state : "?", nw);
        else if (strcmp(action, "stop") == 0)
            printf("%s: %s (%zu worker(s) stopping)\n", name ? name : "?", state ? state : "?", nw);
        else
            printf("%s: %s\n", name ? name : "?", state ? state : "?");
    }
}

static int ctl(const CliOpts *o, const char *action)
{
    if (o->nargs != 1) {
        fprintf(stderr, "pgwake %s: expected one STAGE or \"all\" (see pgwake help %s)\n", action,
                action);
        return EXIT_USAGE;
    }
    const char *name = o->args[0];
    if (strcmp(name, "all") != 0 && !stage_name_valid(name)) {
        fprintf(stderr, "pgwake %s: invalid stage name \"%s\" (stage names match "
                        "^[a-z0-9_][a-z0-9_.-]{0,62}$, or use \"all\")\n", action, name);
        return EXIT_USAGE;
    }
    Config *cfg;
    int rc = cli_load_config(o, false, &cfg);
    if (rc)
        return rc;
    char path[160], addr[300], err[ERR_LEN];
    snprintf(path, sizeof path, "/stages/%s/%s", name, action);
    httpcli_addr(cfg, addr, sizeof addr);
    HttpReply r;
    if (!httpcli_call(cfg, true, path, &r, err, sizeof err)) {
        fprintf(stderr, "pgwake daemon not running (http://%s unreachable: %s)\n", addr, err);
        cfg_free(cfg);
        return EXIT_RUNTIME;
    }
    json_t *j = r.body ? json_loads(r.body, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (r.code == 200 && json_is_true(json_object_get(j, "ok"))) {
        print_result(action, j);
        rc = EXIT_OK;
    } else {
        fprintf(stderr, "pgwake %s %s: %s (HTTP %ld from http://%s)\n", action, name,
                msg ? msg : "unexpected answer", r.code, addr);
        rc = r.code == 404 ? EXIT_USAGE : EXIT_RUNTIME;
    }
    json_decref(j);
    httpcli_reply_free(&r);
    cfg_free(cfg);
    return rc;
}

/* cmd_start clears FATAL or an operator stop; the stage recounts its work. */
int cmd_start(const CliOpts *o) { return ctl(o, "start"); }

/* cmd_stop stops a stage until `pgwake start` (persisted in pgwake.stage_state). */
int cmd_stop(const CliOpts *o) { return ctl(o, "stop"); }

/* cmd_restart replaces a stage's workers one at a time, each after its task. */
int cmd_restart(const CliOpts *o) { return ctl(o, "restart"); }
