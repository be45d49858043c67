/* test_notify.c: notify_parse over the four channels of SPEC section 4, edge
 * cases spelled out, then a seeded fuzz loop checking invariants and a grammar oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "notify.h"

#define STAGE63 "abcdefghijklmnopqrstuvwxyz0123456789_.-abcdefghijklmnopqrstuvwx"
#define STAGE64 STAGE63 "y"
_Static_assert(sizeof STAGE63 - 1 == 63, "63-byte stage");

static const char *const all_states[] = {"starting", "alive", "exited", "dead"};

/* field_ok: the field is NUL-terminated inside its buffer. */
static bool field_ok(const char *f, size_t size)
{
    return memchr(f, '\0', size) != NULL;
}

/* check_invariants fails the test when m breaks what every caller relies on:
 * a valid kind and channel, terminated fields, a stage iff NT_STAGE, kinds
 * only on the channels that can produce them. `what` names the input. */
static void check_invariants(const NotifyMsg *m, const char *what)
{
    if ((unsigned)m->kind > NT_BAD)
        fail_msg("%s: kind %d out of range", what, (int)m->kind);
    if ((unsigned)m->channel >= CH__COUNT)
        fail_msg("%s: channel %d out of range", what, (int)m->channel);
    if (!field_ok(m->stage, sizeof m->stage) || !field_ok(m->worker_id, sizeof m->worker_id) ||
        !field_ok(m->state, sizeof m->state))
        fail_msg("%s: a field is not NUL-terminated", what);
    if ((m->stage[0] != '\0') != (m->kind == NT_STAGE))
        fail_msg("%s: kind %d with stage \"%s\"", what, (int)m->kind, m->stage);
    if (m->kind == NT_STAGE && !stage_name_valid(m->stage))
        fail_msg("%s: NT_STAGE with invalid stage \"%s\"", what, m->stage);
    if (m->kind == NT_ALL && m->channel != CH_WAKE)
        fail_msg("%s: NT_ALL on channel %d", what, (int)m->channel);
    if (m->kind == NT_WORKER) {
        if (m->channel != CH_HEARTBEAT || m->worker_id[0] == '\0')
            fail_msg("%s: NT_WORKER on channel %d, id \"%s\"", what, (int)m->channel, m->worker_id);
        bool known = false;
        for (size_t i = 0; i < sizeof all_states / sizeof all_states[0]; i++)
            known |= strcmp(m->state, all_states[i]) == 0;
        if (!known)
            fail_msg("%s: NT_WORKER with state \"%s\"", what, m->state);
    } else if (m->state[0] != '\0') {
        fail_msg("%s: kind %d with state \"%s\"", what, (int)m->kind, m->state);
    }
    if (m->kind == NT_STAGE && m->channel == CH_HEARTBEAT)
        fail_msg("%s: NT_STAGE on pgwake_heartbeat", what);
    if (m->channel == CH_UNKNOWN && m->kind != NT_BAD)
        fail_msg("%s: unknown channel gave kind %d", what, (int)m->kind);
    if (m->run_id < 0 || (m->run_id != 0 && !(m->channel == CH_RUN && m->kind == NT_STAGE)))
        fail_msg("%s: run_id %lld with kind %d", what, (long long)m->run_id, (int)m->kind);
}

static NotifyMsg parse(const char *channel, const char *payload)
{
    char what[160];
    snprintf(what, sizeof what, "(%s, \"%.100s\"%s)", channel ? channel : "NULL",
             payload ? payload : "NULL", payload && strlen(payload) > 100 ? "..." : "");
    NotifyMsg m = notify_parse(channel, payload);
    check_invariants(&m, what);
    return m;
}

static void expect_stage(const char *channel, const char *payload, const char *stage)
{
    NotifyMsg m = parse(channel, payload);
    if (m.kind != NT_STAGE)
        fail_msg("(%s, \"%s\"): want NT_STAGE \"%s\", got kind %d", channel, payload, stage,
                 (int)m.kind);
    assert_string_equal(m.stage, stage);
}

static void expect_kind(const char *channel, const char *payload, NotifyKind kind)
{
    NotifyMsg m = parse(channel, payload);
    if (m.kind != kind)
        fail_msg("(%s, \"%.120s\"): want kind %d, got %d (stage \"%s\")",
                 channel ? channel : "NULL", payload ? payload : "NULL", (int)kind, (int)m.kind,
                 m.stage);
}

/* repeat: n copies of c between prefix and suffix, in one of a few static
 * slots (no heap, so a failing assertion leaks nothing under valgrind). */
static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
    static char slots[4][8192];
    static unsigned next;
    size_t p = strlen(prefix), s = strlen(suffix);
    assert_true(p + n + s < sizeof slots[0]);
    char *buf = slots[next++ % 4];
    memcpy(buf, prefix, p);
    memset(buf + p, c, n);
    memcpy(buf + p + n, suffix, s + 1);
    return buf;
}

/* ---- the channel table ---- */

static void test_channel_names(void **state)
{
    (void)state;
    for (int c = 0; c < CH__COUNT; c++) {
        assert_non_null(channel_names[c]);
        assert_true(channel_names[c][0] != '\0');
        for (int d = 0; d < c; d++)
            if (strcmp(channel_names[c], channel_names[d]) == 0)
                fail_msg("channels %d and %d are both named \"%s\"", d, c, channel_names[c]);
        /* Each name maps back to its own channel; "unknown" is no channel. */
        assert_int_equal(notify_parse(channel_names[c], "x").channel, c);
    }
    assert_string_equal(channel_names[CH_RUN], "pgwake_run");
    assert_string_equal(channel_names[CH_TASK], "pgwake_task");
    assert_string_equal(channel_names[CH_HEARTBEAT], "pgwake_heartbeat");
    assert_string_equal(channel_names[CH_WAKE], "pgwake_wake");
}

static void test_unknown_channel(void **state)
{
    (void)state;
    static const char *const channels[] = {
        "", "unknown", "pgwake", "pgwake_", "pgwake_wak", "pgwake_wakee", "pgwake_wake ",
        " pgwake_wake", "PGWAKE_WAKE", "Pgwake_task", "pgwake_tasks", "pgwake.run",
        "pgwake_heartbeat\n", "other_channel",
    };
    static const char *const payloads[] = {"", "*", "stage", "stage 1", "w1 alive"};
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++)
        for (size_t j = 0; j < sizeof payloads / sizeof payloads[0]; j++) {
            NotifyMsg m = parse(channels[i], payloads[j]);
            assert_int_equal(m.channel, CH_UNKNOWN);
            assert_int_equal(m.kind, NT_BAD);
        }
}

static void test_null_arguments(void **state)
{
    (void)state;
    NotifyMsg m = parse(NULL, "stage");
    assert_int_equal(m.channel, CH_UNKNOWN);
    assert_int_equal(m.kind, NT_BAD);
    m = parse(NULL, NULL);
    assert_int_equal(m.channel, CH_UNKNOWN);
    assert_int_equal(m.kind, NT_BAD);
    /* A NULL payload reads as the empty one: a wake for all, nothing elsewhere. */
    assert_int_equal(parse("pgwake_wake", NULL).kind, NT_ALL);
    assert_int_equal(parse("pgwake_wake", NULL).channel, CH_WAKE);
    expect_kind("pgwake_task", NULL, NT_BAD);
    expect_kind("pgwake_run", NULL, NT_BAD);
    expect_kind("pgwake_heartbeat", NULL, NT_BAD);
}

/* ---- pgwake_task and pgwake_wake: <stage> ---- */

/* Payloads every stage channel takes as the stage named second. */
static const char *const good_stages[][2] = {
    {"a", "a"},
    {"0", "0"},
    {"_", "_"},
    {"_x", "_x"},
    {"company_research", "company_research"},
    {"company_research.v2-b", "company_research.v2-b"},
    {"a.", "a."},
    {"a-", "a-"},
    {"a..b", "a..b"},
    {"9-.", "9-."},
    {STAGE63, STAGE63},
    {" s", "s"},
    {"s ", "s"},
    {"   s   ", "s"},
    {"  " STAGE63 "  ", STAGE63},
};

/* Payloads no stage channel takes (pgwake_wake's "" and "*" aside). */
static const char *const bad_stages[] = {
    STAGE64,
    STAGE63 "a",
    ".a",
    "-a",
    ".",
    "-",
    "A",
    "Stage",
    "stagE",
    "company_Research",
    "a b",
    "a  b",
    "\ts",
    "s\t",
    "\t",
    "s\n",
    "\ns",
    "s\r\n",
    "\vs",
    "s\f",
    "\x01",
    "s\x01",
    "\x1b[31ms",
    "s\x7f",
    "\x7f",
    "caf\xc3\xa9",
    "\xc3\xa9t\xc3\xa9",
    "\xe2\x80\x8bs",   /* zero-width space */
    "s\xc2\xa0",       /* no-break space: not trimmed */
    "\xff",
    "\x80s",
    "a/b",
    "a:b",
    "a*",
    "**",
    "* *",
    "'s'",
    "\"s\"",
    "s,t",
    "s;",
    "s 1",
};

static void test_task(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_stages / sizeof good_stages[0]; i++)
        expect_stage("pgwake_task", good_stages[i][0], good_stages[i][1]);
    for (size_t i = 0; i < sizeof bad_stages / sizeof bad_stages[0]; i++)
        expect_kind("pgwake_task", bad_stages[i], NT_BAD);
    /* No wildcard on pgwake_task: it is fired by rows, never by people. */
    expect_kind("pgwake_task", "", NT_BAD);
    expect_kind("pgwake_task", "   ", NT_BAD);
    expect_kind("pgwake_task", "*", NT_BAD);
    expect_kind("pgwake_task", " * ", NT_BAD);
    assert_int_equal(parse("pgwake_task", "s").channel, CH_TASK);
    assert_int_equal(parse("pgwake_task", "s").run_id, 0);
}

static void test_wake(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_stages / sizeof good_stages[0]; i++)
        expect_stage("pgwake_wake", good_stages[i][0], good_stages[i][1]);
    for (size_t i = 0; i < sizeof bad_stages / sizeof bad_stages[0]; i++)
        expect_kind("pgwake_wake", bad_stages[i], NT_BAD);
    static const char *const all[] = {"", " ", "        ", "*", " *", "* ", "   *   "};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        NotifyMsg m = parse("pgwake_wake", all[i]);
        assert_int_equal(m.kind, NT_ALL);
        assert_int_equal(m.channel, CH_WAKE);
        assert_string_equal(m.stage, "");
    }
    /* Only spaces are forgiven around a payload; other white space is junk. */
    expect_kind("pgwake_wake", "\t", NT_BAD);
    expect_kind("pgwake_wake", "\t*", NT_BAD);
    expect_kind("pgwake_wake", "*\n", NT_BAD);
    expect_kind("pgwake_wake", "\n", NT_BAD);
    expect_kind("pgwake_wake", "*.", NT_BAD);
    expect_kind("pgwake_wake", "all", NT_STAGE); /* a stage that happens to be called "all" */
}

/* 8,000 bytes is PostgreSQL's payload limit: long junk, long padding. */
static void test_long_payloads(void **state)
{
    (void)state;
    static const char *const channels[] = {"pgwake_task", "pgwake_wake", "pgwake_run",
                                           "pgwake_heartbeat", "nope"};
    char *letters = repeat("", 'a', 8000, "");
    char *spaces = repeat("", ' ', 8000, "");
    char *ctl = repeat("", '\x01', 8000, "");
    char *high = repeat("", '\xff', 8000, "");
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
        expect_kind(channels[i], letters, NT_BAD);
        expect_kind(channels[i], ctl, NT_BAD);
        expect_kind(channels[i], high, NT_BAD);
    }
    /* All spaces trims to the empty payload. */
    expect_kind("pgwake_wake", spaces, NT_ALL);
    expect_kind("pgwake_task", spaces, NT_BAD);
    expect_kind("pgwake_run", spaces, NT_BAD);
    expect_kind("pgwake_heartbeat", spaces, NT_BAD);

    /* A name padded to 8,000 bytes by spaces on either side still counts. */
    char *left = repeat("", ' ', 8000 - 63, STAGE63);
    char *right = repeat(STAGE63, ' ', 8000 - 63, "");
    char *both = repeat("", ' ', 8000, "");
    memcpy(both + 4000, STAGE63, 63); /* "<3999 spaces><name><3937 spaces>" */
    expect_stage("pgwake_task", left, STAGE63);
    expect_stage("pgwake_wake", right, STAGE63);
    expect_stage("pgwake_wake", both, STAGE63);
    char *run = repeat("", ' ', 7990, "s 42");
    NotifyMsg m = parse("pgwake_run", run);
    assert_int_equal(m.kind, NT_STAGE);
    assert_int_equal(m.run_id, 42);
    char *hb = repeat("w1 alive", ' ', 7992, "");
    m = parse("pgwake_heartbeat", hb);
    assert_int_equal(m.kind, NT_WORKER);
    assert_string_equal(m.state, "alive");
    /* Long words where short ones belong: no field may overflow. */
    expect_kind("pgwake_run", repeat("s ", '1', 7998, ""), NT_BAD);
    expect_kind("pgwake_run", repeat("", 'a', 7998, " 1"), NT_BAD);
    char *longid = repeat("", 'w', 7994, " dead");
    expect_kind("pgwake_heartbeat", longid, NT_BAD);
}

/* ---- pgwake_run: <stage> <run_id> ---- */

static void expect_run(const char *payload, const char *stage, int64_t run_id)
{
    NotifyMsg m = parse("pgwake_run", payload);
    if (m.kind != NT_STAGE)
        fail_msg("(pgwake_run, \"%s\"): want NT_STAGE %s run %lld, got kind %d", payload, stage,
                 (long long)run_id, (int)m.kind);
    assert_int_equal(m.channel, CH_RUN);
    assert_string_equal(m.stage, stage);
    assert_int_equal(m.run_id, run_id);
}

static void test_run(void **state)
{
    (void)state;
    expect_run("s 1", "s", 1);
    expect_run("company_research 12345", "company_research", 12345);
    expect_run(STAGE63 " 7", STAGE63, 7);
    expect_run("  s 9  ", "s", 9);
    expect_run("1 1", "1", 1);
    expect_run("s 007", "s", 7); /* leading zeros: still the number */
    expect_run("s 999999999999999999", "s", 999999999999999999LL); /* 18 digits */

    static const char *const bad[] = {
        "s",  "s ",  " s ", "1", " 1", "s 0", "s 00", "s -1", "s -0", "s +1", "s 1.0", "s 1e3",
        "s 0x10", "s 12a", "s a12", "s one", "s 1 2", "s  1", "s 1\t", "s\t1", "s \t1", "s 1\n",
        "s 1\x01", "s \xd9\xa1", /* ARABIC-INDIC DIGIT ONE */
        "S 1", ".s 1", "-s 1", "s.s.S 1", "a b 1", STAGE64 " 1", " 1 s", "* 1", " 1",
        "s 99999999999999999999",           /* 20 digits */
        "s 9223372036854775808",            /* INT64_MAX + 1 */
        "s 18446744073709551616",           /* 2^64 */
        "s 000000000000000000000000000001", /* 30 digits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_kind("pgwake_run", bad[i], NT_BAD);
}

/* pgwake.runs.id is a bigserial: every id from 1 to INT64_MAX is a run, and
 * ids from 10^18 up have 19 digits. */
static void test_run_id_19_digits(void **state)
{
    (void)state;
    expect_run("s 1000000000000000000", "s", 1000000000000000000LL);
    expect_run("s 9223372036854775807", "s", INT64_MAX);
}

/* ---- pgwake_heartbeat: <worker_id> <state> ---- */

static void expect_worker(const char *payload, const char *id, const char *st)
{
    NotifyMsg m = parse("pgwake_heartbeat", payload);
    if (m.kind != NT_WORKER)
        fail_msg("(pgwake_heartbeat, \"%s\"): want NT_WORKER, got kind %d", payload, (int)m.kind);
    assert_int_equal(m.channel, CH_HEARTBEAT);
    assert_string_equal(m.worker_id, id);
    assert_string_equal(m.state, st);
    assert_string_equal(m.stage, "");
    assert_int_equal(m.run_id, 0);
}

static void test_heartbeat(void **state)
{
    (void)state;
    char payload[200];
    for (size_t i = 0; i < sizeof all_states / sizeof all_states[0]; i++) {
        snprintf(payload, sizeof payload, "w1 %s", all_states[i]);
        expect_worker(payload, "w1", all_states[i]);
        snprintf(payload, sizeof payload, "   host-1:4242:ab12 %s   ", all_states[i]);
        expect_worker(payload, "host-1:4242:ab12", all_states[i]);
    }
    /* The worker id is opaque: any bytes but white space and control bytes. */
    expect_worker("W/1.x@h alive", "W/1.x@h", "alive");
    expect_worker("*:\"' dead", "*:\"'", "dead");
    expect_worker("h\xc3\xb4te-1 exited", "h\xc3\xb4te-1", "exited");
    char *id127 = repeat("", 'i', 127, "");
    char *p127 = repeat("", 'i', 127, " starting");
    expect_worker(p127, id127, "starting");

    char *p128 = repeat("", 'i', 128, " alive");
    expect_kind("pgwake_heartbeat", p128, NT_BAD);
    static const char *const bad[] = {
        "", " ", "w1", "w1 ", " w1", "alive", " alive", "w1 running", "w1 ALIVE", "w1 Alive",
        "w1 aliv", "w1 alive2", "w1 alivee", "w1 alive extra", "w1 alive dead", "w1  alive",
        "w1   alive", "w1\talive", "w1 \talive", "w1 alive\t", "w1 alive\n", "w\x01 alive",
        "w\x7f alive", "w1 start", "w1 starting\x01", "w1 dead\xc2\xa0",
        "w1 exit", "w1 died", "w1 *", "company_research", "w1 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_kind("pgwake_heartbeat", bad[i], NT_BAD);
}

/* worker_id and state belong to NT_WORKER as stage belongs to NT_STAGE (which
 * notify_parse clears on every other verdict): a refused heartbeat carries no id. */
static void test_heartbeat_bad_carries_no_id(void **state)
{
    (void)state;
    static const char *const bad[] = {"w1 bogus", "w1 alive extra", "w1  alive", "w1 ALIVE"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        NotifyMsg m = parse("pgwake_heartbeat", bad[i]);
        assert_int_equal(m.kind, NT_BAD);
        if (m.worker_id[0] != '\0')
            fail_msg("(pgwake_heartbeat, \"%s\"): NT_BAD with worker_id \"%s\"", bad[i], m.worker_id);
    }
}

/* Stage-shaped payloads on the other channels, and the other way round. */
static void test_cross_channel(void **state)
{
    (void)state;
    expect_kind("pgwake_heartbeat", "s", NT_BAD);
    expect_kind("pgwake_heartbeat", "*", NT_BAD);
    expect_kind("pgwake_task", "w1 alive", NT_BAD);
    expect_kind("pgwake_wake", "w1 alive", NT_BAD);
    expect_kind("pgwake_wake", "s 1", NT_BAD);
    expect_kind("pgwake_run", "w1 alive", NT_BAD);
    expect_kind("pgwake_run", "*", NT_BAD);
    expect_kind("pgwake_run", "", NT_BAD);
}

/* ---- fuzz ---- */

static uint64_t rng_state;
static uint64_t rng_seed; /* printed with every fuzz failure */

static uint64_t rnd(void)
{
    /* xorshift64*: fast, seedable, good enough to spread bytes */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void seed_rng(void)
{
    const char *s = getenv("PGWAKE_FUZZ_SEED");
    rng_state = s ? strtoull(s, NULL, 0) : 0x70677761UL;
    if (rng_state == 0)
        rng_state = 1;
    rng_seed = rng_state;
}

#define FUZZ_MAX 8000
#define FUZZ_ITERATIONS 100000

static const char *const fuzz_states[] = {"starting", "alive", "exited", "dead", "ALIVE", "aliv",
                                          "alive ", "", "deadx"};

/* fuzz_payload writes one NUL-terminated payload of at most FUZZ_MAX bytes.
 * Half are long (0..8000 bytes) byte soup; half are short and built from the
 * grammar's own pieces, so the accepting paths are reached too. */
static size_t fuzz_payload(char *buf)
{
    static const char alphabet[] = "az09_.- *\tA\x01\x7f\xc3\xa9";
    uint64_t mode = rnd() % 8;
    size_t n = 0;
    if (mode < 4) {
        n = (size_t)(rnd() % (FUZZ_MAX + 1));
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = rnd();
            for (size_t k = 0; k < 8 && i + k < n; k++, r >>= 8) {
                unsigned char c = (unsigned char)r;
                if (mode == 0)
                    c = c ? c : 1;                        /* any byte but NUL */
                else if (mode == 1)
                    c = (unsigned char)(0x20 + c % 0x5f); /* printable ASCII */
                else if (mode == 2)
                    c = (unsigned char)alphabet[c % (sizeof alphabet - 1)];
                else
                    c = (c & 1) ? ' ' : (unsigned char)("az09_.-"[c % 7]);
                buf[i + k] = (char)c;
            }
        }
    } else if (mode < 6) {
        /* [spaces] stage-ish [' ' digits-ish] [spaces] */
        size_t lead = rnd() % 3, slen = rnd() % 70, dlen = rnd() % 23;
        while (lead--)
            buf[n++] = ' ';
        for (size_t i = 0; i < slen; i++)
            buf[n++] = "abcxyz0189_.-"[rnd() % 13];
        if (rnd() % 4) {
            buf[n++] = ' ';
            for (size_t i = 0; i < dlen; i++)
                buf[n++] = (char)('0' + rnd() % 10);
        }
        for (size_t trail = rnd() % 3; trail; trail--)
            buf[n++] = ' ';
    } else {
        /* worker_id state */
        size_t ilen = rnd() % 131;
        for (size_t i = 0; i < ilen; i++)
            buf[n++] = (char)(0x21 + rnd() % 0x5e);
        buf[n++] = ' ';
        const char *st = fuzz_states[rnd() % (sizeof fuzz_states / sizeof fuzz_states[0])];
        memcpy(buf + n, st, strlen(st));
        n += strlen(st);
    }
    if (mode >= 4 && n && rnd() % 4 == 0) /* one mutated byte */
        buf[rnd() % n] = (char)(rnd() % 255 + 1);
    buf[n] = '\0';
    return n;
}

static const char *fuzz_channel(void)
{
    static const char *const ch[] = {"pgwake_run", "pgwake_task", "pgwake_heartbeat",
                                     "pgwake_wake", "pgwake_other", NULL};
    return ch[rnd() % (sizeof ch / sizeof ch[0])];
}

/* The brief's invariants, on 100,000 payloads: whatever the bytes, a valid
 * verdict with terminated fields and a stage exactly when NT_STAGE. */
static void test_fuzz_invariants(void **state)
{
    (void)state;
    static char buf[FUZZ_MAX + 1];
    seed_rng();
    for (int it = 0; it < FUZZ_ITERATIONS; it++) {
        const char *channel = fuzz_channel();
        fuzz_payload(buf);
        char what[200];
        snprintf(what, sizeof what, "fuzz seed %#llx iteration %d (%s, \"%.80s\")",
                 (unsigned long long)rng_seed, it, channel ? channel : "NULL", buf);
        NotifyMsg m = notify_parse(channel, buf);
        check_invariants(&m, what);
    }
}

/* ---- the grammar, written out independently, as a fuzz oracle ---- */

static bool ref_stage(const char *s, size_t n)
{
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  (i > 0 && (c == '.' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* A run id is 1..19 decimal digits worth 1..INT64_MAX. */
static bool ref_run_id(const char *s, size_t n, int64_t *out)
{
    uint64_t v = 0;
    if (n < 1 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits fit in uint64_t */
    }
    if (v == 0 || v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool ref_worker_id(const char *s, size_t n)
{
    if (n < 1 || n > 127)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

/* ref_parse: what SPEC section 4 says (channel, payload) means. */
static NotifyMsg ref_parse(const char *channel, const char *payload)
{
    NotifyMsg m;
    memset(&m, 0, sizeof m);
    m.kind = NT_BAD;
    m.channel = CH_UNKNOWN;
    for (int c = 0; channel && c < CH_UNKNOWN; c++)
        if (strcmp(channel, channel_names[c]) == 0)
            m.channel = (Channel)c;
    const char *s = payload ? payload : "";
    size_t n = strlen(s);
    while (n && *s == ' ')
        s++, n--;
    while (n && s[n - 1] == ' ')
        n--;
    const char *sp = memchr(s, ' ', n);
    size_t k = sp ? (size_t)(sp - s) : n; /* first word */
    switch (m.channel) {
    case CH_RUN:
        if (sp && ref_stage(s, k) && ref_run_id(sp + 1, n - k - 1, &m.run_id)) {
            memcpy(m.stage, s, k);
            m.kind = NT_STAGE;
        } else {
            m.run_id = 0;
        }
        break;
    case CH_TASK:
    case CH_WAKE:
        if (m.channel == CH_WAKE && (n == 0 || (n == 1 && *s == '*'))) {
            m.kind = NT_ALL;
        } else if (ref_stage(s, n)) {
            memcpy(m.stage, s, n);
            m.kind = NT_STAGE;
        }
        break;
    case CH_HEARTBEAT:
        for (size_t i = 0; sp && i < sizeof all_states / sizeof all_states[0]; i++)
            if (ref_worker_id(s, k) && n - k - 1 == strlen(all_states[i]) &&
                memcmp(sp + 1, all_states[i], n - k - 1) == 0) {
                memcpy(m.worker_id, s, k);
                strcpy(m.state, all_states[i]);
                m.kind = NT_WORKER;
            }
        break;
    default:
        break;
    }
    return m;
}

static void test_fuzz_oracle(void **state)
{
    (void)state;
    static char buf[FUZZ_MAX + 1];
    seed_rng();
    rng_state ^= 0x5a5a5a5a; /* a different stream from the invariants test */
    int accepted = 0;
    for (int it = 0; it < FUZZ_ITERATIONS; it++) {
        const char *channel = fuzz_channel();
        fuzz_payload(buf);
        NotifyMsg got = notify_parse(channel, buf);
        NotifyMsg want = ref_parse(channel, buf);
        bool same = got.kind == want.kind && got.channel == want.channel &&
                    strcmp(got.stage, want.stage) == 0 && got.run_id == want.run_id &&
                    strcmp(got.state, want.state) == 0 &&
                    (want.kind != NT_WORKER || strcmp(got.worker_id, want.worker_id) == 0);
        if (!same)
            fail_msg("fuzz seed %#llx iteration %d: (%s, \"%.200s\"): want kind %d stage \"%s\" run %lld "
                     "state \"%s\"; got kind %d stage \"%s\" run %lld state \"%s\"",
                     (unsigned long long)rng_seed, it, channel ? channel : "NULL", buf, (int)want.kind, want.stage,
                     (long long)want.run_id, want.state, (int)got.kind, got.stage,
                     (long long)got.run_id, got.state);
        accepted += got.kind != NT_BAD;
    }
    /* The generator must reach the accepting paths, or the oracle proves little. */
    if (accepted < FUZZ_ITERATIONS / 20)
        fail_msg("only %d of %d fuzz payloads were accepted", accepted, FUZZ_ITERATIONS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_channel_names),
        cmocka_unit_test(test_unknown_channel),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_task),
        cmocka_unit_test(test_wake),
        cmocka_unit_test(test_long_payloads),
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_run_id_19_digits),
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_heartbeat_bad_carries_no_id),
        cmocka_unit_test(test_cross_channel),
        cmocka_unit_test(test_fuzz_invariants),
        cmocka_unit_test(test_fuzz_oracle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
