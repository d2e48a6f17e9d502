'use strict';
// A topic partitioned by the Python side (its count marked in the topic's meta hash): Redis
// refuses to store a job or schedule in the topic itself, and this glue says so.
const assert = require('node:assert/strict');
const { test } = require('node:test');
const { TopicPartitioned, InvalidArgument } = require('../redisched');
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
  assert.equal(await s.get(topic, 'a'), null);
  assert.deepEqual(await s.schedules(topic), []);
});
