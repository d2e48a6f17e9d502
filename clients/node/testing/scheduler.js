'use strict';
// The Scheduler the tests share: one connection to REDISCHED_TEST_REDIS_URL per test file (closed
// after its tests) and, per test, a fixed clock and a fresh topic; and a server over it.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after } = require('node:test');
const Redis = require('ioredis');
const { Scheduler } = require('../redisched');
const { createServer } = require('../server');

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

/** createServer(options) over the shared connection on a free loopback port, closed after the
 * test `t`: {port, base} (base: its URL). */
async function listening(t, options) {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const server = createServer(new Scheduler(redis), options);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const { port } = server.address();
  return { port, base: `http://127.0.0.1:${port}` };
}

module.exports = { redis, testScheduler, listening };
