'use strict';
// Replays conformance/vectors/*.json through the Node glue against a real redis-server.
// REDISCHED_TEST_REDIS_URL names a server you own (each vector writes under a fresh topic);
// REDISCHED_LUA_DIR and REDISCHED_VECTORS_DIR override where the scripts and vectors are read.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');
const Redis = require('ioredis');
const { Scheduler, buildArgs, loadScripts } = require('../redisched');

const url = process.env.REDISCHED_TEST_REDIS_URL;
const vectorsDir = process.env.REDISCHED_VECTORS_DIR
  || path.resolve(__dirname, '../../../conformance/vectors');
const vectors = fs.readdirSync(vectorsDir).filter((f) => f.endsWith('.json')).sort()
  .map((f) => JSON.parse(fs.readFileSync(path.join(vectorsDir, f), 'utf8')));

// A reply as the vectors write it: integers, UTF-8 strings, null, arrays, {error: line}.
async function jsonReply(promise) {
  try {
    return await promise;
  } catch (err) {
    if (err.name !== 'ReplyError') throw err;
    return { error: err.message };
  }
}

describe('header parsing', () => {
  test('every script declares its keys and arguments', () => {
    const scripts = loadScripts();
    assert.ok(scripts.size >= 15);
    assert.deepEqual(scripts.get('touch').keys, ['jobs', 'reserved', 'meta', 'feed']);
    assert.deepEqual(buildArgs(scripts.get('ack'),
      { now_ms: 5, id: ['a', 'b'], token: ['1', '2'], result: ['', 'r'] }),
      ['5', 'a', '1', '', 'b', '2', 'r']);
    assert.throws(() => buildArgs(scripts.get('touch'), { now_ms: 1 }), /missing argument id/);
  });
});

describe('conformance vectors', () => {
  let redis;
  let scheduler;
  before(() => {
    assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
    redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 1 });
    scheduler = new Scheduler(redis);
  });
  after(() => redis && redis.quit());

  test('there are vectors to run', () => assert.ok(vectors.length > 0, `no vectors in ${vectorsDir}`));

  for (const vector of vectors) {
    test(vector.name, async () => {
      const topic = `conformance-node-${vector.name}-${crypto.randomBytes(4).toString('hex')}`;
      for (const [i, step] of vector.steps.entries()) {
        let reply;
        if (step.meta) {
          const fields = Object.entries(step.meta).flat();
          reply = await jsonReply(redis.hset(`${scheduler.prefix}:{${topic}}:meta`, ...fields));
        } else {
          reply = await jsonReply(scheduler.call(step.call, topic, step.args));
        }
        assert.deepEqual(reply, step.reply, `step ${i} (${step.call || 'meta'}: ${step.note})`);
      }
    });
  }
});
