'use strict';
// The Worker against REDISCHED_TEST_REDIS_URL: runs due jobs, retries with backoff, stops.
// (tests/test_glue_workers.py drives the worker process from Python: kill -9, grace, lag.)
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after, test } = require('node:test');
const Redis = require('ioredis');
const { Backoff, InvalidArgument, Retry, Scheduler, Worker, signHeaders, secretKey, toJsonText, toStored } = require('..');

const url = process.env.REDISCHED_TEST_REDIS_URL;
const redis = url ? new Redis(url, { maxRetriesPerRequest: 1 }) : null;
after(() => redis && redis.quit());

test('the worker runs due and future jobs once, retries failures, then stops', async () => {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const s = new Scheduler(redis);
  const topic = `node-worker-${crypto.randomBytes(4).toString('hex')}`;
  const ran = [];
  const worker = new Worker(s, {
    [topic]: async (job) => {
      ran.push(`${job.id}:${job.attempts}`);
      if (job.id === 'retry' && job.attempts === 1) throw new Retry(50, 'again');
      if (job.id === 'dead') throw new Error('always');
      if (job.id === 'later') return 'x'.repeat(70_000);
      return job.id === 'now' ? { ran: job.id, é: [1, 2.5] } : 10n;
    },
  }, { backoff: new Backoff({ baseMs: 20, maxMs: 20 }), handleSignals: false, logger: { info() {}, warn() {}, error() {} } });
  const done = worker.run({ onReady: async () => {
    await s.put(topic, 'now', 'x');
    await s.put(topic, 'later', 'x', { delayMs: 150 });
    await s.put(topic, 'retry', 'x');
    await s.put(topic, 'dead', 'x', { maxAttempts: 2 });
  } });
  const deadline = Date.now() + 5000;
  while ((await s.stats(topic)).totalAcked < 3 || (await s.stats(topic)).dead < 1) {
    assert.ok(Date.now() < deadline, `timed out: ${ran}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  worker.stop();
  await done;
  assert.deepEqual(ran.sort(), ['dead:1', 'dead:2', 'later:1', 'now:1', 'retry:1', 'retry:2']);
  const dead = await s.get(topic, 'dead');
  assert.equal(dead.state, 'dead');
  assert.match(dead.lastError, /Error: always/);
  // A handler's return value is the job's result, encoded and cut as the Python Worker does.
  const result = async (id) => (await s.call('history', topic, { id }, { buffers: true }))[4];
  assert.equal((await result('now')).toString(), '{"ran":"now","\\u00e9":[1,2.5]}');
  assert.equal((await result('later')).length, 65536);
  assert.equal((await result('retry')).toString(), '10', 'not JSON: kept as its String()');
});

test('signatures and bodies follow the Python service', () => {
  // The Standard Webhooks example: secret, id, timestamp and body from its specification.
  const key = secretKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
  const body = '{"test": 2432232314}';
  const headers = signHeaders('msg_p5jXN8AQM9LWM0D4loKWxJek', body, [key], 1614265330);
  assert.equal(headers['webhook-signature'], 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  assert.deepEqual(toStored({ a: [1, 'b'] }), Buffer.from('{"a":[1,"b"]}'));
  assert.deepEqual(toStored({ $base64: 'AP8=' }), Buffer.from([0, 255]));
  assert.equal(toJsonText(Buffer.from([0, 255])), '{"$base64":"AP8="}');
  assert.equal(toJsonText(Buffer.from('{"$base64":"AP8="}')), '{"$base64":"eyIkYmFzZTY0IjoiQVA4PSJ9"}');
  assert.equal(toJsonText(Buffer.from('[1, 2]')), '[1, 2]');
});

test('a Retry with a bad delay fails its job with backoff, as the Python Retry does', async () => {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  for (const [args, field] of [[[-1], 'delayMs'], [[NaN], 'delayMs'], [[Infinity], 'delayMs'], [[0, 5], 'reason']]) {
    assert.throws(() => new Retry(...args), (e) => e instanceof InvalidArgument && e.field === field);
  }
  assert.throws(() => new Worker(redis, { x: () => {} }, { ttrMs: 0 }), (e) => e.field === 'ttrMs');
  assert.throws(() => new Worker(redis, { x: () => {} }, { graceMs: -1 }), (e) => e.field === 'graceMs');
  // Before, the release was refused and the job stayed reserved, with no error, until its ttr.
  const s = new Scheduler(redis);
  const topic = `node-worker-${crypto.randomBytes(4).toString('hex')}`;
  await s.put(topic, 'j', 'x');
  const worker = new Worker(s, { [topic]: async () => { throw new Retry(-1, 'negative'); } },
    { backoff: new Backoff({ baseMs: 60_000, maxMs: 60_000 }), handleSignals: false,
      logger: { info() {}, warn() {}, error() {} } });
  const done = worker.run();
  const deadline = Date.now() + 5000;
  while ((await s.stats(topic)).totalReleased < 1) {
    assert.ok(Date.now() < deadline, 'the job was not released');
    await new Promise((r) => setTimeout(r, 10));
  }
  worker.stop();
  await done;
  const job = await s.get(topic, 'j');
  assert.equal(job.state, 'scheduled');
  assert.match(job.lastError, /delayMs: must be at least 0 ms/);
});
