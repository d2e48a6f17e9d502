'use strict';
// A topic partitioned by the Python side (its count marked in the topic's meta hash): Redis
// refuses to store a job or schedule in the topic itself, a read there that finds nothing says
// so, and this glue throws TopicPartitioned for each.
const assert = require('node:assert/strict');
const { test } = require('node:test');
const { TopicPartitioned, InvalidArgument } = require('../redisched');
const { Worker } = require('..');
const { redis, testScheduler } = require('../testing/scheduler');

test('a put or schedule into a partitioned topic itself throws TopicPartitioned', async () => {
  const { s, topic } = testScheduler('node-partitioned');
  await redis.hset(`${s.prefix}:{${topic}}:meta`, 'partitions', '3');
  const refused = (err) => err instanceof TopicPartitioned && err instanceof InvalidArgument
    && err.field === 'topic' && err.count === 3;
  await assert.rejects(s.put(topic, 'a', 'x'), refused);
  await assert.rejects(s.put(topic, 'a', 'x', { replace: true }), refused);
  await assert.rejects(s.schedule(topic, 's', 'x', { everyMs: 60_000 }), refused);
  await assert.rejects(s.delete(topic, 'a'), refused); // it answered false: a cancel let it run
  await assert.rejects(s.abort(topic, 'a'), refused);
  await assert.rejects(s.schedules(topic), refused); // it answered []: a part of the topic's
  await assert.rejects(s.getSchedule(topic, 's'), refused); // null: it may be in a partition
});

test('a read of a partitioned topic itself that finds nothing throws TopicPartitioned', async () => {
  // they answered null, [] and zeros: an app polling get saw "not found" for a job in its
  // partition, and a worker reserving from the topic idled forever
  const { s, topic } = testScheduler('node-partitioned-reads');
  await s.put(topic, 'old', 'x'); // put before the mark: read where it is
  await s.put(topic, 'gone', 'y');
  await redis.hset(`${s.prefix}:{${topic}}:meta`, 'partitions', '3');
  const refused = (err) => err instanceof TopicPartitioned && err.field === 'topic' && err.count === 3;
  await assert.rejects(s.get(topic, 'a'), refused);
  await assert.rejects(s.stats(topic), refused);
  assert.equal((await s.get(topic, 'old')).id, 'old');
  assert.equal((await s.pull(topic)).id, 'old');
  const [leased] = await s.reserve(topic);
  assert.equal(leased.id, 'gone');
  await assert.rejects(s.reserve(topic), refused);
  await assert.rejects(s.lease(topic, { count: 5 }), refused);
  await assert.rejects(s.ackAndLease(topic, [leased], 5), refused);
  await assert.rejects(s.ackAndLease(topic, [], 5), refused);
  await assert.rejects(s.pull(topic), refused);
  await assert.rejects(s.unschedule(topic, 'nightly'), refused); // it answered false
  await redis.hdel(`${s.prefix}:{${topic}}:meta`, 'partitions');
  assert.equal(await s.unschedule(topic, 'nightly'), false);
  assert.equal(await s.get(topic, 'a'), null); // a plain topic: as ever
  assert.deepEqual(await s.reserve(topic), []);
  assert.equal(await s.pull(topic), null);
  assert.equal((await s.stats(topic)).reserved, 0); // the ack above went through
});

test('a worker refuses a partitioned topic at run()', async () => {
  const { s, topic } = testScheduler('node-partitioned-worker');
  await redis.hset(`${s.prefix}:{${topic}}:meta`, 'partitions', '2');
  const worker = new Worker(s, { [topic]: async () => {} }, { handleSignals: false });
  await assert.rejects(worker.run(), (err) => err instanceof TopicPartitioned && err.count === 2);
  assert.equal(worker.running, false);
});
