'use strict';
// The Worker acts on the cancel message (`c<token>:<id>`, docs/design.md section 7) for a running job:
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

const { quiet, until, running } = require('../testing/waiting');

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
  const { done } = await running(worker);
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
  // The cancel messages its requeue publishes (one per expired reservation) may be read after
  // it leased the jobs again: they name the expired tokens, so the new attempts go on (naming
  // only the id, they cancelled them, and the jobs ran a third time).
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

/** Holds the cancel messages (a wake message starting with a letter) the worker's subscriber
 * reads until open(), as a subscriber on a slower connection, or on another Cluster node, may
 * read them late. */
function gate(worker) {
  const held = [];
  let closed = true;
  const { subscriber } = worker;
  const emit = subscriber.emit.bind(subscriber);
  subscriber.emit = (event, ...args) => {
    if (event === 'messageBuffer' && closed && /^[a-z]/.test(args[1].toString('latin1'))) {
      held.push(args);
      return true;
    }
    return emit(event, ...args);
  };
  return {
    held,
    open() {
      closed = false;
      held.splice(0).forEach((args) => emit('messageBuffer', ...args));
    },
  };
}

test('a cancel of an older reservation read after the new attempt started leaves it alone', async () => {
  // The job's first reservation (a consumer that died) ends at its deadline, by another
  // process's requeue or the worker's own; its cancel is read only once the worker leased the
  // job anew and its handler started: it names the old token, so the new attempt goes on.
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const s = new Scheduler(redis);
  const topic = `node-late-cancel-${crypto.randomBytes(4).toString('hex')}`;
  await s.put(topic, 'j', 'x');
  const [old] = await s.reserve(topic, { ttrMs: 200 });
  const ended = [];
  let started = false;
  const worker = new Worker(s, {
    [topic]: async (job, { signal }) => {
      started = true;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 600);
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      ended.push([job.token, signal.aborted ? 'cancelled' : 'done']);
      if (signal.aborted) throw signal.reason;
    },
  }, { handleSignals: false, logger: quiet });
  const done = worker.run();
  const late = gate(worker);
  try {
    await new Promise((r) => setTimeout(r, 250));
    await s.requeue(topic); // another process, unless the worker's own requeue came first
    await until(() => started, 'the new attempt started');
    assert.equal(late.held.length, 1, 'the old reservation\'s cancel was held');
    late.open();
    await until(() => ended.length, 'the handler ended');
  } finally {
    worker.stop();
    await done;
  }
  assert.notEqual(ended[0][0], old.token);
  assert.deepEqual(ended.map(([, how]) => how), ['done']);
  assert.equal((await history(s, topic, 'j')).outcome, 'done');
});

test('a job deleted before the worker reads the lease that took it never runs', async () => {
  // The delete's cancel is read first, before there is an attempt to cancel: remembered, it
  // stops the attempt when the lease is read.
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const s = new Scheduler(redis);
  const topic = `node-early-cancel-${crypto.randomBytes(4).toString('hex')}`;
  const lease = s.ackAndLease.bind(s);
  let deleted = false;
  s.ackAndLease = async (...args) => {
    const result = await lease(...args);
    if (!deleted && result.jobs.some((job) => job.id === 'doomed')) {
      deleted = true;
      assert.equal(await s.delete(topic, 'doomed'), true);
      await new Promise((r) => setTimeout(r, 200)); // the subscriber reads the cancel
    }
    return result;
  };
  const ran = [];
  const worker = new Worker(s, { [topic]: async (job) => { ran.push(job.id); } },
    { handleSignals: false, logger: quiet });
  const { done } = await running(worker);
  try {
    await s.put(topic, 'doomed', 'x');
    await until(() => deleted, 'the lease took the job');
    await s.put(topic, 'next', 'x');
    await until(() => ran.includes('next'), 'the worker went on');
  } finally {
    worker.stop();
    await done;
  }
  assert.deepEqual(ran, ['next']);
  assert.equal(await s.get(topic, 'doomed'), null);
  assert.equal((await history(s, topic, 'doomed')).outcome, 'cancelled');
});
