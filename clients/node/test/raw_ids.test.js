'use strict';
// Ids stored by a raw script call as bytes that are not UTF-8 (docs/design.md section 3): the
// glue reads them as Python does (each such byte a lone surrogate U+DC80..U+DCFF) and its calls
// on the job, the schedule and the Worker send the same bytes back, so they reach that job.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after, test } = require('node:test');
const Redis = require('ioredis');
const { Scheduler, Worker, InvalidArgument } = require('..');
const { payload } = require('../push');
const { messageId } = require('../signing');
const { scheduleArgs } = require('../schedules');
const { quiet, until, running } = require('../testing/waiting');

const url = process.env.REDISCHED_TEST_REDIS_URL;
const redis = url ? new Redis(url, { maxRetriesPerRequest: 1 }) : null;
after(() => redis && redis.quit());

const ODD = Buffer.from('bad-\xff', 'latin1'); // "bad-" and the byte 0xFF: no UTF-8
const ODD_TEXT = 'bad-\udcff';
const NEIGHBOUR = 'bad-\ufffd'; // what a lossy read made of it: another job's id

function setup() {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const clock = { now: 1_900_000_000_000 };
  const s = new Scheduler(redis, { clock: () => clock.now });
  return { s, clock, topic: `node-raw-${crypto.randomBytes(4).toString('hex')}` };
}

/** put.lua called as any client may call it: the id as raw bytes. */
function rawPut(s, topic, id, body = 'b') {
  return s.call('put', topic, {
    now_ms: s.now(), run_at_ms: '', delay_ms: 0, ttr_ms: '', priority: 0, max_attempts: '',
    replace: 0, if_version: '', id: [id], body: [body],
  });
}

test('a job whose id is not UTF-8 is read as Python reads it and every call reaches it', async () => {
  const { s, topic } = setup();
  await rawPut(s, topic, ODD, 'odd');
  await s.put(topic, NEIGHBOUR, 'neighbour', { delayMs: 60_000 });

  const found = await s.get(topic, ODD_TEXT);
  assert.equal(found.id, ODD_TEXT);
  assert.equal(found.body.toString(), 'odd');

  let [job] = await s.reserve(topic);
  assert.equal(job.id, ODD_TEXT);
  assert.equal(typeof await s.touch(job, { ttrMs: 5000 }), 'number');
  assert.equal(await s.release(job, { error: 'again' }), 'ready');
  [job] = await s.reserve(topic);
  await s.bury(job, { reason: 'look at it' });
  assert.equal((await s.get(topic, ODD_TEXT)).state, 'dead');
  assert.equal(await s.kick(topic, ODD_TEXT), 1);
  [job] = await s.reserve(topic);
  await s.ack(job, 'done');
  assert.equal(await s.get(topic, ODD_TEXT), null);
  const [outcome] = await s.call('history', topic, { id: ODD });
  assert.equal(outcome.toString(), 'done');

  // ackMany and ackAndLease send the bytes too; delete and abort reach the job by its text
  await rawPut(s, topic, ODD, 'again');
  [job] = await s.reserve(topic);
  assert.deepEqual(await s.ackMany(topic, [job]), [true]);
  await rawPut(s, topic, ODD, 'third');
  assert.equal(await s.delete(topic, ODD_TEXT), true);
  assert.equal(await s.delete(topic, ODD_TEXT), false);

  // the neighbour whose id a lossy read would have named is untouched by all of it
  const neighbour = await s.get(topic, NEIGHBOUR);
  assert.deepEqual([neighbour.state, neighbour.version, neighbour.body.toString()], ['scheduled', 1, 'neighbour']);
});

test('a webhook names such a job as Python does: \\xNN in its payload, its bytes in the message id', async () => {
  const job = { topic: 't', id: ODD_TEXT, body: Buffer.from('{}'), attempts: 1, version: 3, token: '7', runAtMs: 0 };
  assert.equal(JSON.parse(payload(job)).id, 'bad-\\xff');
  const expected = crypto.createHash('sha256')
    .update(Buffer.concat([Buffer.from('t\0'), ODD, Buffer.from('\x003')])).digest('hex').slice(0, 32);
  assert.equal(messageId(job), `msg_${expected}`);
});

test('a lone surrogate that stands for no stored byte is refused, naming the argument', async () => {
  const { s, topic } = setup();
  await rawPut(s, topic, 'kept');
  for (const bad of ['\ud800', 'x\udc41', '\udcc3\udca9']) { // not an escape, not one, spells "é"
    await assert.rejects(s.get(topic, bad), (err) => err instanceof InvalidArgument && err.field === 'id');
    await assert.rejects(s.delete(topic, bad), (err) => err instanceof InvalidArgument && err.field === 'id');
    await assert.rejects(s.ack({ topic, id: bad, token: '1' }),
      (err) => err instanceof InvalidArgument && err.field === 'job.id');
  }
  await assert.rejects(s.put(topic, ODD_TEXT, 'x'), (err) => err instanceof InvalidArgument && err.field === 'id');
  assert.equal((await s.get(topic, 'kept')).state, 'ready');
});

test('a schedule whose id is not UTF-8 is listed, read and removed by its text', async () => {
  const { s, clock, topic } = setup();
  const args = scheduleArgs('valid', 'tick', { everyMs: 60_000 }, clock.now, s.maxBodySize);
  const [status] = await s.call('schedule', topic, { now_ms: s.now(), ...args, id: ODD });
  assert.equal(status, 1);
  await s.schedule(topic, 'plain', 'tock', { everyMs: 60_000 });
  assert.deepEqual((await s.schedules(topic)).map((entry) => entry.id), [ODD_TEXT, 'plain']);
  assert.equal((await s.getSchedule(topic, ODD_TEXT)).id, ODD_TEXT);
  assert.equal(await s.unschedule(topic, ODD_TEXT), true);
  assert.equal(await s.getSchedule(topic, ODD_TEXT), null);
  assert.deepEqual((await s.schedules(topic)).map((entry) => entry.id), ['plain']);
});

test('the Worker acks such a job, and a delete by its text cancels it while it runs', async () => {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const s = new Scheduler(redis);
  const topic = `node-raw-worker-${crypto.randomBytes(4).toString('hex')}`;
  const seen = [];
  let cancelled = null;
  const handler = async (job, { signal }) => {
    seen.push(job.id);
    if (job.body.toString() === 'quick') return 'ok';
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 10_000);
      signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
    cancelled = signal.aborted;
    throw signal.reason;
  };
  const worker = new Worker(s, { [topic]: handler }, { ttrMs: 60_000, handleSignals: false, logger: quiet });
  const { done } = await running(worker);
  try {
    await rawPut(s, topic, ODD, 'quick');
    await until(async () => (await s.stats(topic)).totalAcked === 1, 'the job acked');
    assert.equal(await s.get(topic, ODD_TEXT), null);

    await rawPut(s, topic, ODD, 'slow');
    await until(async () => seen.length === 2, 'the second job started');
    assert.equal(await s.delete(topic, ODD_TEXT), true);
    await until(async () => cancelled !== null, 'the handler cancelled');
    assert.equal(cancelled, true);
  } finally {
    worker.stop();
    await done;
  }
  assert.deepEqual(seen, [ODD_TEXT, ODD_TEXT]);
});
