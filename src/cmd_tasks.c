/* cmd_tasks.c: `pgwake tasks` (the task list of GET /tasks as a table cut
 * to the terminal), `pgwake retry ID...|--stage S --dead`, `pgwake cancel
 * ID...` (straight to the database: they work with no daemon running) and
 * `pgwake tail STAGE [-n N] [-f]` (this host's log files, as supervisorctl
 * tail). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "logtail.h"
#include "tasks.h"

#define FOLLOW_POLL_MS 300

static int terminal_width(void)
{
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    const char *c = getenv("COLUMNS");
    long v;
    if (c && cli_long_arg(c, 20, 10000, &v))
        return (int)v;
    return 120;
}

static void age_text(double s, char *out, size_t n)
{
    if (s < 120)
        snprintf(out, n, "%.0fs", s);
    else if (s < 7200)
        snprintf(out, n, "%.0fm", s / 60);
    else if (s < 172800)
        snprintf(out, n, "%.0fh", s / 3600);
    else
        snprintf(out, n, "%.0fd", s / 86400);
}

/* Prints text on one line within width columns (newlines shown as spaces;
 * a longer text is cut on a UTF-8 character boundary and ends with "…"). */
static void print_cut(const char *text, int width)
{
    int cols = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        cols += (*p & 0xC0) != 0x80;
    int keep = cols <= width ? cols : width - 1;
    int col = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xC0) != 0x80 && ++col > keep)
            break;
        putchar(*p == '\n' || *p == '\r' || *p == '\t' ? ' ' : *p);
    }
    if (keep < cols && keep >= 0)
        fputs("\u2026", stdout);
    putchar('\n');
}

static int print_tasks(PGresult *r, long limit, bool json)
{
    json_t *page = tasks_page(r, limit);
    if (json) {
        json_dumpf(page, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(page);
        return EXIT_OK;
    }
    char head[200];
    int hn = snprintf(head, sizeof head, "%-10s %-24s %-9s %-8s %-6s %-28s ", "ID", "STAGE", "STATE",
                      "ATTEMPTS", "AGE", "OWNER");
    int room = terminal_width() - hn;
    fputs(head, stdout);
    print_cut("LAST_ERROR", room);
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(page, "tasks"), i, t) {
        char age[16], att[24];
        age_text(json_real_value(json_object_get(t, "age_s")), age, sizeof age);
        snprintf(att, sizeof att, "%lld/%lld", (long long)json_integer_value(json_object_get(t, "attempts")),
                 (long long)json_integer_value(json_object_get(t, "max_attempts")));
        const char *state = json_string_value(json_object_get(t, "state"));
        if (json_is_true(json_object_get(t, "retrying")))
            state = "retrying";
        const char *owner = json_string_value(json_object_get(t, "owner"));
        const char *err = json_string_value(json_object_get(t, "last_error"));
        printf("%-10lld %-24s %-9s %-8s %-6s %-28.28s ", (long long)json_integer_value(json_object_get(t, "id")),
               json_string_value(json_object_get(t, "stage")), state, att, age, owner ? owner : "-");
        print_cut(err ? err : "", room);
    }
    json_t *next = json_object_get(page, "next_before");
    if (json_is_integer(next))
        printf("(more: --before %lld)\n", (long long)json_integer_value(next));
    json_decref(page);
    return EXIT_OK;
}

int cmd_tasks(const CliOpts *o)
{
    if (o->nargs) {
        fprintf(stderr, "pgwake tasks: unexpected argument \"%s\" (filters are --stage, --state, "
                        "--run, --limit, --before)\n", o->args[0]);
        return EXIT_USAGE;
    }
    TaskFilter f = {.stage = o->stage, .state = o->state, .run = o->run_id, .before = o->before,
                    .limit = o->limit};
    char err[300];
    if (!tasks_filter_check(&f, err, sizeof err)) {
        fprintf(stderr, "pgwake tasks: %s\n", err);
        return EXIT_USAGE;
    }
    int rc;
    PGconn *c = cli_open_db(o, &rc);
    if (!c)
        return rc;
    TaskParams p;
    tasks_params(&f, &p);
    PGresult *r = PQexecParams(c, tasks_list_sql, 5, NULL, p.v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgwake tasks: unable to read pgwake.tasks: %s", PQresultErrorMessage(r));
        rc = EXIT_RUNTIME;
    } else {
        rc = print_tasks(r, f.limit, o->json);
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* One retry or cancel; the worst outcome so far is kept in *rc. */
static void act_one(PGconn *c, const char *action, long id, int *rc)
{
    char idtext[24];
    snprintf(idtext, sizeof idtext, "%ld", id);
    const char *params[] = {idtext, action};
    PGresult *r = PQexecParams(c, tasks_action_sql, 2, NULL, params, NULL, NULL, 0);
    char msg[400];
    int code = tasks_action_outcome(r, id, action, msg, sizeof msg);
    PQclear(r);
    if (code == 200) {
        printf("%s\n", msg);
        return;
    }
    fprintf(stderr, "pgwake %s: %s\n", action, msg);
    if (*rc == EXIT_OK)
        *rc = code == 500 ? EXIT_RUNTIME : EXIT_USAGE;
}

static int retry_dead_stage(PGconn *c, const char *stage)
{
    const char *params[] = {stage};
    PGresult *r = PQexecParams(c,
                               "SELECT count(*) FILTER (WHERE pgwake.retry(t.id)) FROM pgwake.tasks t"
                               " WHERE t.stage = $1 AND t.status = 'dead'",
                               1, NULL, params, NULL, NULL, 0);
    int rc = EXIT_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgwake retry: %s", PQresultErrorMessage(r));
        rc = EXIT_RUNTIME;
    } else {
        printf("%s dead tasks of stage %s are pending now\n", PQgetvalue(r, 0, 0), stage);
    }
    PQclear(r);
    return rc;
}

static int act(const CliOpts *o, const char *action)
{
    bool bulk = strcmp(action, "retry") == 0 && o->stage && o->dead;
    if (bulk ? o->nargs > 0 : (o->nargs == 0 || o->stage || o->dead)) {
        fprintf(stderr, "pgwake %s: expected %s (see pgwake help %s)\n", action,
                strcmp(action, "retry") == 0 ? "task ids, or --stage S --dead" : "task ids", action);
        return EXIT_USAGE;
    }
    if (bulk && !stage_name_valid(o->stage)) {
        fprintf(stderr, "pgwake retry: invalid stage name \"%s\"\n", o->stage);
        return EXIT_USAGE;
    }
    long *ids = calloc((size_t)o->nargs + 1, sizeof *ids);
    for (int i = 0; ids && i < o->nargs; i++)
        if (!cli_long_arg(o->args[i], 1, __LONG_MAX__, &ids[i])) {
            fprintf(stderr, "pgwake %s: \"%s\" is not a task id\n", action, o->args[i]);
            free(ids);
            return EXIT_USAGE;
        }
    int rc;
    PGconn *c = ids ? cli_open_db(o, &rc) : NULL;
    if (!c) {
        free(ids);
        return ids ? rc : EXIT_RUNTIME;
    }
    if (bulk)
        rc = retry_dead_stage(c, o->stage);
    for (int i = 0; !bulk && i < o->nargs; i++)
        act_one(c, action, ids[i], &rc);
    free(ids);
    PQfinish(c);
    return rc;
}

int cmd_retry(const CliOpts *o) { return act(o, "retry"); }
int cmd_cancel(const CliOpts *o) { return act(o, "cancel"); }

/* Prints what was appended to path since *pos; starts over from 0 when the
 * file shrank or was replaced (rotation). */
static void follow_step(const char *path, off_t *pos, ino_t *ino)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return;
    if (st.st_ino != *ino || st.st_size < *pos) {
        *ino = st.st_ino;
        *pos = 0;
    }
    if (st.st_size == *pos)
        return;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[8192];
    size_t got;
    if (fseeko(f, *pos, SEEK_SET) == 0)
        while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
            fwrite(buf, 1, got, stdout);
            *pos += (off_t)got;
        }
    fclose(f);
    fflush(stdout);
}

int cmd_tail(const CliOpts *o)
{
    if (o->nargs != 1 || !stage_name_valid(o->args[0])) {
        fprintf(stderr, "pgwake tail: expected one STAGE name (see pgwake help tail)\n");
        return EXIT_USAGE;
    }
    Config *cfg;
    int rc = cli_load_config(o, true, &cfg);
    if (rc)
        return rc;
    const char *stage = o->args[0];
    bool known = false;
    for (int i = 0; i < cfg->nstages; i++)
        known |= strcmp(cfg->stages[i].name, stage) == 0;
    if (!known) {
        fprintf(stderr, "pgwake tail: the configuration has no [stage:%s]\n", stage);
        cfg_free(cfg);
        return EXIT_USAGE;
    }
    char path[4096], err[400];
    snprintf(path, sizeof path, "%s/%s.log", cfg->log_dir, stage);
    off_t size;
    json_t *lines = logtail_lines(path, cfg->log_backups, (int)o->lines, NULL, &size, err, sizeof err);
    cfg_free(cfg);
    if (!lines) {
        fprintf(stderr, "pgwake tail: %s\n", err);
        return EXIT_RUNTIME;
    }
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
        puts(json_string_value(l));
    json_decref(lines);
    fflush(stdout);
    if (!o->follow)
        return EXIT_OK;
    struct stat st;
    ino_t ino = stat(path, &st) == 0 ? st.st_ino : 0;
    for (;;) {
        nanosleep(&(struct timespec){0, FOLLOW_POLL_MS * 1000000L}, NULL);
        follow_step(path, &size, &ino);
    }
}
