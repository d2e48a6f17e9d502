'use strict';
// The Scheduler's typed methods on a fixed clock, against REDISCHED_TEST_REDIS_URL.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { test } = require('node:test');
const { StaleReservation, VersionConflict, InvalidArgument } = require('../redisched');

const { redis, testScheduler } = require('../testing/scheduler');

const scheduler = () => testScheduler('node-glue');

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

test('bad job arguments name the field, send nothing and leave the stored job alone', async () => {
  const { s, topic } = scheduler();
  await s.put(topic, 'kept', 'original', { delayMs: 5000, priority: 3 });
  const before = await s.get(topic, 'kept');
  const bad = [
    [['', 'b'], 'id'], [['x'.repeat(1025), 'b'], 'id'], [['a\ud800', 'b'], 'id'], [[7, 'b'], 'id'],
    [['kept', 'a\udc00'], 'body'], [['kept', 42], 'body'], [['kept', Buffer.alloc((1 << 20) + 1)], 'body'],
    [['kept', 'b', { delayMs: -1 }], 'delayMs'], [['kept', 'b', { delayMs: NaN }], 'delayMs'],
    [['kept', 'b', { delayMs: Infinity }], 'delayMs'], [['kept', 'b', { delayMs: '5' }], 'delayMs'],
    [['kept', 'b', { ttrMs: 0 }], 'ttrMs'], [['kept', 'b', { ttrMs: 366 * 86_400_000 }], 'ttrMs'],
    [['kept', 'b', { priority: 2 ** 31 }], 'priority'], [['kept', 'b', { priority: 1.5 }], 'priority'],
    [['kept', 'b', { maxAttempts: 0 }], 'maxAttempts'], [['kept', 'b', { runAtMs: -1 }], 'runAtMs'],
    [['kept', 'b', { replace: true, ifVersion: 0 }], 'ifVersion'],
  ];
  for (const [args, field] of bad) {
    await assert.rejects(s.put(topic, ...args),
      (err) => err instanceof InvalidArgument && err.field === field, `${field}: ${JSON.stringify(args[2])}`);
  }
  const braces = `${topic}{x}`;
  await assert.rejects(s.put(braces, 'j', 'b'), (err) => err instanceof InvalidArgument && err.field === 'topic');
  assert.equal(await redis.sismember('redisched:topics', braces), 0);
  await assert.rejects(s.get(topic, ''), (e) => e.field === 'id');
  await assert.rejects(s.delete(topic, ''), (e) => e.field === 'id');
  await assert.rejects(s.delete(topic, 'kept', { ifVersion: -2 }), (e) => e.field === 'ifVersion');
  await assert.rejects(s.delete(topic, 'kept', { ifVersion: 2 ** 53 }), (e) => e.field === 'ifVersion');
  // a busy topic's versions pass 2^31 (version_floor): such an ifVersion is compared, not refused
  await assert.rejects(s.put(topic, 'kept', 'b', { replace: true, ifVersion: 2 ** 40 }), VersionConflict);
  await assert.rejects(s.reserve(topic, { count: 0 }), (e) => e.field === 'count');
  await assert.rejects(s.lease(topic, { count: 1001 }), (e) => e.field === 'count');
  await assert.rejects(s.reserve(topic, { ttrMs: -5 }), (e) => e.field === 'ttrMs');
  await assert.rejects(s.release({ topic, id: 'kept', token: '1' }, { delayMs: NaN }), (e) => e.field === 'delayMs');
  await assert.rejects(s.touch({ topic, id: 'kept' }), (e) => e.field === 'job');
  await assert.rejects(s.ack({ topic, id: 'kept' }), (e) => e.field === 'job');
  await assert.rejects(s.ack({ topic, id: '', token: '1' }), (e) => e.field === 'job.id');
  await assert.rejects(s.bury({ topic, id: 'kept' }), (e) => e.field === 'job');
  await assert.rejects(s.bury({ topic, id: 'kept', token: '1' }, { reason: 'a\ud800' }), (e) => e.field === 'reason');
  await assert.rejects(s.release({ topic, id: 'kept', token: '1' }, { error: 'a\udc00' }), (e) => e.field === 'error');
  assert.deepEqual(await s.get(topic, 'kept'), before);
  assert.equal(await redis.hlen(`redisched:{${topic}}:jobs`), 1);
});

test('topics are checked as Python does: 200 code points, valid Unicode', async () => {
  const { s, topic } = scheduler();
  const emoji = `${topic}-${'\u{1F600}'.repeat(150)}`; // 150 code points, 300 UTF-16 units
  assert.deepEqual(await s.put(emoji, 'j', 'b'), { status: 'created', version: 1 });
  assert.equal((await s.get(emoji, 'j')).id, 'j');
  for (const bad of [`${topic}\ud800`, `${topic}\udc00x`, 'x'.repeat(201)]) {
    await assert.rejects(s.put(bad, 'j', 'b'), (e) => e instanceof InvalidArgument && e.field === 'topic');
  }
  assert.equal(await redis.sismember('redisched:topics', `${topic}\ufffd`), 0);
});

test('"." and ".." are refused as new ids and topics; stored ones stay readable and removable', async () => {
  const { s, topic } = scheduler();
  const message = "must not be '.' or '..' (a URL path would resolve it to its parent)";
  const refused = (field) => (e) => e instanceof InvalidArgument && e.field === field
    && e.message === `${field}: ${message}`;
  await redis.srem('redisched:topics', '.', '..'); // an earlier run's
  for (const dot of ['.', '..']) {
    await assert.rejects(s.put(topic, dot, 'b'), refused('id'));
    await assert.rejects(s.schedule(topic, dot, 'b', { everyMs: 60_000 }), refused('id'));
    await assert.rejects(s.put(dot, 'j', 'b'), refused('topic'));
    await assert.rejects(s.schedule(dot, 'j', 'b', { everyMs: 60_000 }), refused('topic'));
    await assert.rejects(s.pause(dot), refused('topic'));
    assert.equal(await redis.sismember('redisched:topics', dot), 0);
    assert.equal(await s.get(topic, dot), null);
    // stored as an older version would have: the script itself takes any id
    await s.call('put', topic, { now_ms: s.now(), run_at_ms: '', delay_ms: 0, ttr_ms: '', priority: 0,
      max_attempts: '', replace: 0, if_version: '', id: [dot], body: ['old'] });
    assert.equal((await s.get(topic, dot)).id, dot);
    assert.equal(await s.delete(topic, dot), true);
  }
});

/** The reply of history.lua as [outcome, [kind, detail] of the last event]. */
async function lastEvent(s, topic, id) {
  const [outcome, , , , , , ...events] = await s.call('history', topic, { id });
  const [kind, , , , detail] = events[events.length - 1];
  return [outcome, kind, detail];
}

test('abort ends a job aborted with its reason; the holder of a running one is told', async () => {
  const { s, topic } = scheduler();
  await s.put(topic, 'a', 'x');
  await s.put(topic, 'r', 'y');
  const subscriber = redis.duplicate();
  const messages = [];
  subscriber.on('message', (_, message) => messages.push(message));
  try {
    await subscriber.subscribe(s.wakeChannel(topic));
    const [job] = await s.reserve(topic); // a (the first put)
    assert.equal(await s.abort(topic, 'a', { reason: 'wrong customer' }), true);
    await assert.rejects(s.ack(job), StaleReservation); // as after a delete
    const cancel = `c${job.token}:a`; // the cancel, as a delete sends: the token, then the id
    for (let i = 0; i < 100 && !messages.includes(cancel); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(messages.includes(cancel), messages);
  } finally {
    subscriber.disconnect();
  }
  assert.deepEqual(await lastEvent(s, topic, 'a'), ['aborted', 'aborted', 'wrong customer; was running; cancel sent']);
  assert.equal(await s.abort(topic, 'r'), true);
  assert.deepEqual(await lastEvent(s, topic, 'r'), ['aborted', 'aborted', null]);
  assert.equal(await s.abort(topic, 'r', { reason: 'again' }), false); // gone: nothing more is recorded
  assert.deepEqual(await lastEvent(s, topic, 'r'), ['aborted', 'aborted', null]);
  await s.put(topic, 'b', 'z', { maxAttempts: 1 });
  await s.release((await s.reserve(topic))[0], { error: 'bad' });
  assert.equal(await s.abort(topic, 'b', { reason: null }), true);
  assert.deepEqual(await lastEvent(s, topic, 'b'), ['dead', 'aborted', null]); // a dead job stays dead
  const stats = await s.stats(topic);
  assert.deepEqual([stats.finishedAborted, stats.finishedDead, stats.finishedCancelled], [2, 1, 0]);
});

test("abort's reason is checked as Python's validate.text: a string of at most 65536 characters", async () => {
  const { s, topic } = scheduler();
  await s.put(topic, 'a', 'x');
  const bad = [
    [1, 'reason: must be a string, not number'], [Buffer.from('x'), 'reason: must be a string, not object'],
    ['ab\ud800', 'reason: must be valid Unicode (no lone surrogates): one at character 2'],
    ['\u{1F600}x\udc00', 'reason: must be valid Unicode (no lone surrogates): one at character 2'],
    ['x'.repeat(65537), 'reason: must be at most 65536 characters'],
  ];
  for (const [reason, message] of bad) {
    await assert.rejects(s.abort(topic, 'a', { reason }),
      (e) => e instanceof InvalidArgument && e.field === 'reason' && e.message === message, message);
  }
  await assert.rejects(s.abort(topic, '', { reason: 'ok' }), (e) => e.field === 'id');
  await assert.rejects(s.abort(`${topic}{x}`, 'a'), (e) => e.field === 'topic');
  assert.notEqual(await s.get(topic, 'a'), null);
  // characters are code points, as in Python: 40000 emoji are 80000 UTF-16 units
  assert.equal(await s.abort(topic, 'a', { reason: '\u{1F600}'.repeat(40000) }), true);
  const [, kind, detail] = await lastEvent(s, topic, 'a');
  assert.deepEqual([kind, detail], ['aborted', '\u{1F600}'.repeat(50)]); // the detail keeps 200 bytes
});

/** `s` with its script `name` under a name the server has never loaded: its next EVALSHA is
 * answered NOSCRIPT, as after a restart (no SCRIPT FLUSH: other test files share the server). */
function unloaded(s, name) {
  const script = s.scripts.get(name);
  const source = `${script.source}\n-- ${crypto.randomBytes(8).toString('hex')}`;
  s.scripts.set(name, { ...script, source, sha: crypto.createHash('sha1').update(source).digest('hex') });
}

test('abort recovers from NOSCRIPT (a restarted server), alone and in the refill pipeline', async () => {
  const { s, topic } = scheduler();
  await s.put(topic, 'a', 'x');
  await s.schedule(topic, 'm', 'b', { everyMs: 60_000 });
  const next = (await s.getSchedule(topic, 'm')).nextRunAtMs;
  const occurrence = `m@${new Date(next).toISOString().replace('.000Z', 'Z')}`;
  for (const id of ['a', occurrence]) {
    unloaded(s, 'delete');
    assert.equal(await redis.script('EXISTS', s.scripts.get('delete').sha).then(([n]) => n), 0);
    assert.equal(await s.abort(topic, id), true);
    assert.equal((await lastEvent(s, topic, id))[0], 'aborted');
  }
});
