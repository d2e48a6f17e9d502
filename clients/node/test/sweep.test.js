'use strict';
// reserve requeues a topic's timed-out reservations first, at most once a second, on the
// server's clock only; against REDISCHED_TEST_REDIS_URL.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { test } = require('node:test');
const { setTimeout: sleep } = require('node:timers/promises');
const { Scheduler } = require('../redisched');

const { redis, testScheduler } = require('../testing/scheduler');

test('a job whose holder died comes back to a consumer that only calls reserve', async () => {
  const s = new Scheduler(redis);
  const topic = `node-sweep-${crypto.randomBytes(4).toString('hex')}`;
  await s.put(topic, 'j', 'x');
  assert.equal((await s.reserve(topic, { ttrMs: 50 })).length, 1);
  await sleep(100);
  assert.deepEqual(await s.reserve(topic), [], 'no second sweep within a second');
  await sleep(1000);
  const [job] = await s.reserve(topic);
  assert.deepEqual([job.id, job.attempts], ['j', 2]);
});

test('a scheduler on its own clock requeues only when told to', async () => {
  const { s, clock, topic } = testScheduler('node-sweep-clock');
  await s.put(topic, 'j', 'x');
  assert.equal((await s.reserve(topic, { ttrMs: 50 })).length, 1);
  clock.now += 10_000;
  assert.deepEqual(await s.reserve(topic), []);
  assert.deepEqual(await s.requeue(topic), [1, 0, -1]);
  assert.equal((await s.reserve(topic))[0].attempts, 2);
});
