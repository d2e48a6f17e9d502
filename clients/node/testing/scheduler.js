'use strict';
// The Scheduler the tests share: one connection to REDISCHED_TEST_REDIS_URL per test file (closed
// after its tests) and, per test, a fixed clock and a fresh topic.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after } = require('node:test');
const Redis = require('ioredis');
const { Scheduler } = require('../redisched');

const url = process.env.REDISCHED_TEST_REDIS_URL;
const redis = url ? new Redis(url, { maxRetriesPerRequest: 1 }) : null;
after(() => redis && redis.quit());

/** A Scheduler on a clock the test moves, and a topic named `<prefix>-<random>`. */
function testScheduler(prefix) {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const clock = { now: 1_900_000_000_000 };
  const s = new Scheduler(redis, { clock: () => clock.now });
  return { s, clock, topic: `${prefix}-${crypto.randomBytes(4).toString('hex')}` };
}

module.exports = { redis, testScheduler };
