'use strict';
// The Worker acts on the cancel message (`x<id>`, docs/design.md section 7) for a running job:
// a delete, an abort or a replace aborts the handler's AbortSignal at once (not at its next
// touch, past half its ttr), and the attempt ends as the Python Worker ends it.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after, test } = require('node:test');
const Redis = require('ioredis');
const { Cancelled, Scheduler, Worker } = require('..');

const url = process.env.REDISCHED_TEST_REDIS_URL;
const redis = url ? new Redis(url, { maxRetriesPerRequest: 1 }) : null;
after(() => redis && redis.quit());

const quiet = { info() {}, warn() {}, error() {} };

async function until(check, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** history.lua's reply as {outcome, result, events: [[kind, version, detail], ...]}. */
async function history(s, topic, id) {
  const [outcome, , , , result, , ...events] = await s.call('history', topic, { id });
  return { outcome, result, events: events.map(([kind, , version, , detail]) => [kind, Number(version), detail]) };
}

test('a running job deleted, aborted or replaced has its signal aborted at once', async () => {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const s = new Scheduler(redis);
  const topic = `node-cancel-${crypto.randomBytes(4).toString('hex')}`;
  const started = [];
  const aborted = new Map(); // id -> {at, reason}
  const handler = async (job, { signal }) => {
    const body = job.body.toString();
    started.push(`${job.id}:${body}`);
    if (body === 'v2') return 'done v2';
    // Waits on its signal; the long ttr below puts the first touch 30 s away.
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
    aborted.set(job.id, { at: Date.now(), reason: signal.reason });
    if (job.id === 'replaced') return `done ${body}`; // finishes anyway: must not be acked
    throw signal.reason;
  };
  const worker = new Worker(s, { [topic]: handler }, { ttrMs: 60_000, handleSignals: false, logger: quiet });
  let ready;
  const subscribed = new Promise((resolve) => { ready = resolve; });
  const done = worker.run({ onReady: ready });
  await subscribed;
  try {
    const cancels = [
      ['deleted', () => s.delete(topic, 'deleted')],
      ['aborted', () => s.abort(topic, 'aborted', { reason: 'wrong customer' })],
      ['replaced', () => s.put(topic, 'replaced', 'v2', { replace: true })],
    ];
    for (const [id, cancel] of cancels) {
      await s.put(topic, id, 'v1');
      await until(() => started.includes(`${id}:v1`), `${id} started`);
      const asked = Date.now();
      await cancel();
      await until(() => aborted.has(id), `${id}: its signal was not aborted`, 3000);
      const { at, reason } = aborted.get(id);
      assert.ok(at - asked < 500, `${id}: aborted ${at - asked} ms after the cancel`);
      assert.ok(reason instanceof Cancelled, `${id}: ${reason}`);
    }
    await until(async () => (await history(s, topic, 'replaced')).outcome === 'done', 'the new version ran');
  } finally {
    worker.stop();
    await done;
  }
  assert.deepEqual(started, ['deleted:v1', 'aborted:v1', 'replaced:v1', 'replaced:v2']);
  const deleted = await history(s, topic, 'deleted');
  assert.equal(deleted.outcome, 'cancelled');
  assert.deepEqual(deleted.events.at(-1), ['deleted', 1, 'was running; cancel sent']);
  const abortedJob = await history(s, topic, 'aborted');
  assert.equal(abortedJob.outcome, 'aborted');
  assert.deepEqual(abortedJob.events.at(-1), ['aborted', 1, 'wrong customer; was running; cancel sent']);
  // The old attempt was released, not acked: the new version ran at once and alone was acked.
  const replaced = await history(s, topic, 'replaced');
  assert.equal(String(replaced.result), 'done v2');
  assert.deepEqual(replaced.events.slice(-4).map(([kind, version]) => [kind, version]),
    [['replaced', 1], ['released', 1], ['reserved', 2], ['acked', 2]]);
  assert.equal((await s.stats(topic)).totalAcked, 1);
});

test("a worker's own requeue cancels none of the attempts it leases next", async () => {
  // The cancel messages its requeue publishes (one per expired reservation) are read before it
  // leases again: read after, they cancelled the jobs' new attempts, which ran a third time.
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const s = new Scheduler(redis);
  const topic = `node-requeue-${crypto.randomBytes(4).toString('hex')}`;
  const jobs = 8;
  for (let round = 0; round < 25; round++) {
    const runs = new Map(); // id -> [attempts]
    const ids = Array.from({ length: jobs }, (_, i) => `r${round}-${i}`);
    for (const id of ids) await s.put(topic, id, 'x');
    // held by a consumer that died: their reservations run out in 20 ms
    assert.equal((await s.reserve(topic, { count: jobs, ttrMs: 20 })).length, jobs);
    await new Promise((r) => setTimeout(r, 30));
    const worker = new Worker(s, {
      [topic]: async (job) => {
        runs.set(job.id, [...(runs.get(job.id) ?? []), job.attempts]);
        await new Promise((r) => setTimeout(r, 10));
      },
    }, { handleSignals: false, logger: quiet });
    const done = worker.run();
    try {
      await until(() => runs.size === jobs, `round ${round}: ${[...runs.keys()]}`);
      await new Promise((r) => setTimeout(r, 50)); // a cancelled attempt would run again by now
    } finally {
      worker.stop();
      await done;
    }
    for (const id of ids) assert.deepEqual(runs.get(id), [2], `round ${round}: ${id} ran as attempts ${runs.get(id)}`);
  }
});
