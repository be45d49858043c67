// drain.mjs: graphile-worker's side of bench/drain.sh. Adds N no-op jobs, then
// times a worker pool from its start until every job is gone from the table,
// and prints one RESULT line.
//   node drain.mjs CONNECTION_STRING N MODE
// MODE default: graphile-worker's defaults (concurrency 10). MODE batched: its
// performance page's batching advice, a local queue of 500 and batched
// completions (GRAPHILE_BATCH_DELAY_MS, default 0; the docs show 0).
import { Logger, run, runMigrations } from "graphile-worker";
import pg from "pg";

const [conn, nArg, mode = "default"] = process.argv.slice(2);
const n = Number(nArg);
const delay = Number(process.env.GRAPHILE_BATCH_DELAY_MS ?? 0);
const preset = mode === "batched"
    ? { worker: { localQueue: { size: 500 }, completeJobBatchDelay: delay, failJobBatchDelay: delay } }
    : {};
const logger = new Logger(() => (level, message) => {
    if (level === "error" || level === "warning") console.error(message);
});

await runMigrations({ connectionString: conn, logger });
const db = new pg.Client({ connectionString: conn });
await db.connect();
const left = async () =>
    (await db.query("SELECT count(*)::int AS c FROM graphile_worker._private_jobs")).rows[0].c;
await db.query(
    "SELECT count(graphile_worker.add_job('noop', json_build_object('n', g)))"
    + " FROM generate_series(1, $1) g",
    [n]);
await db.query("VACUUM ANALYZE");
await db.query("CHECKPOINT");

let handled = 0, allHandled;
const handledAll = new Promise((resolve) => { allHandled = resolve; });
const t0 = process.hrtime.bigint();
const runner = await run({
    connectionString: conn, logger, noHandleSignals: true, preset,
    taskList: { noop: async () => { if (++handled === n) allHandled(); } },
});
await handledAll;
while (await left() > 0) // the last completions may still be in flight
    await new Promise((r) => setTimeout(r, 2));
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
await runner.stop();
await db.end();
console.log(`RESULT system=graphile mode=${mode} tasks=${n} seconds=${secs.toFixed(3)}`
    + ` per_s=${(n / secs).toFixed(0)}`);
