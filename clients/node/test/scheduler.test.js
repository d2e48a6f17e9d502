'use strict';
// The Scheduler's typed methods on a fixed clock, against REDISCHED_TEST_REDIS_URL.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after, test } = require('node:test');
const Redis = require('ioredis');
const { Scheduler, StaleReservation, VersionConflict } = require('../redisched');

const url = process.env.REDISCHED_TEST_REDIS_URL;
const redis = url ? new Redis(url, { maxRetriesPerRequest: 1 }) : null;
after(() => redis && redis.quit());

function scheduler() {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const clock = { now: 1_900_000_000_000 };
  const s = new Scheduler(redis, { clock: () => clock.now });
  return { s, clock, topic: `node-glue-${crypto.randomBytes(4).toString('hex')}` };
}

test('a job goes through put, reserve, release, touch, bury, kick and ack', async () => {
  const { s, clock, topic } = scheduler();
  assert.deepEqual(await s.put(topic, 'j', Buffer.from([0, 255]), { delayMs: 1000, maxAttempts: 5 }),
    { status: 'created', version: 1 });
  assert.deepEqual(await s.put(topic, 'j', 'other'), { status: 'exists', version: 1 });
  await assert.rejects(s.put(topic, 'j', 'x', { replace: true, ifVersion: 7 }), VersionConflict);
  assert.deepEqual(await s.reserve(topic), []);
  clock.now += 1000;
  let [job] = await s.reserve(topic, { ttrMs: 2000 });
  assert.deepEqual([job.id, job.state, job.attempts, job.maxAttempts, job.body], ['j', 'reserved', 1, 5, Buffer.from([0, 255])]);
  assert.equal(job.reservedUntilMs, clock.now + 2000);
  assert.equal(await s.touch(job, { ttrMs: 9000 }), clock.now + 9000);
  assert.equal(await s.release(job, { delayMs: 0, error: 'flaky' }), 'ready');
  await assert.rejects(s.ack(job), StaleReservation);
  [job] = await s.reserve(topic);
  assert.equal(job.lastError, 'flaky');
  await s.bury(job, { reason: 'broken' });
  assert.equal((await s.get(topic, 'j')).state, 'dead');
  assert.equal(await s.kick(topic, 'j'), 1);
  [job] = await s.reserve(topic);
  await s.ack(job);
  assert.equal(await s.get(topic, 'j'), null);
  const stats = await s.stats(topic);
  assert.deepEqual([stats.totalAcked, stats.totalDead, stats.totalReleased], [1, 1, 1]);
  assert.ok((await redis.smembers('redisched:topics')).includes(topic));
});

test('pause, pull, requeue and delete', async () => {
  const { s, clock, topic } = scheduler();
  assert.equal(await s.pause(topic), true);
  await s.put(topic, 'a', 'x', { ttrMs: 1000 });
  assert.equal(await s.pull(topic), null);
  assert.equal(await s.resume(topic), true);
  const [job] = await s.reserve(topic);
  clock.now += 1000;
  assert.deepEqual(await s.requeue(topic), [1, 0, -1]);
  assert.equal((await s.pull(topic)).id, 'a');
  await s.put(topic, 'b', 'y');
  assert.equal(await s.delete(topic, 'b', { ifVersion: 1 }), true);
  assert.equal(await s.delete(topic, 'b'), false);
  assert.throws(() => s.keys(s.scripts.get('get'), 'bad{topic}'), /topic/);
  await assert.rejects(s.ack(job), StaleReservation);
});
