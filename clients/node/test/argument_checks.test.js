'use strict';
// Arguments the Python client refuses are refused here too, before anything is sent: ackAndLease,
// ackMany, results, kick and requeue limits, put's options and cron dialect.
const assert = require('node:assert/strict');
const { test } = require('node:test');
const { InvalidArgument, encodeResult } = require('../redisched');
const { cronExpression } = require('../schedules');

const { testScheduler } = require('../testing/scheduler');

const scheduler = () => testScheduler('node-checks');

const invalid = (field) => (err) => err instanceof InvalidArgument && err.field === field;

/** A topic holding one reserved job 'r' and one ready job 'q'; the reserved job. */
async function reservedJob(s, topic) {
  await s.put(topic, 'r', 'x');
  const [job] = await s.reserve(topic);
  await s.put(topic, 'q', 'y');
  return job;
}

test('ackAndLease checks count and ttrMs as lease does, before acking anything', async () => {
  const { s, topic } = scheduler();
  const job = await reservedJob(s, topic);
  const bad = [[1, { ttrMs: -60_000 }, 'ttrMs'], [5000, {}, 'count'], [0, {}, 'count'], [1.5, {}, 'count'],
    ['1', {}, 'count'], [1, { ttrMs: NaN }, 'ttrMs']];
  for (const [count, options, field] of bad) {
    await assert.rejects(s.ackAndLease(topic, [job], count, options), invalid(field), `${count} ${JSON.stringify(options)}`);
    await assert.rejects(s.ackAndLease(topic, [], count, options), invalid(field));
  }
  assert.equal((await s.get(topic, 'r')).state, 'reserved'); // not acked
  assert.equal((await s.get(topic, 'q')).state, 'ready'); // not leased
  const lease = await s.ackAndLease(topic, [job], 1);
  assert.deepEqual([lease.acked, lease.jobs.map((j) => j.id)], [[true], ['q']]);
});

test('ackMany and ackAndLease check each job and result; none is an empty reply', async () => {
  const { s, topic } = scheduler();
  const job = await reservedJob(s, topic);
  await assert.rejects(s.ackMany(topic, 'abc'), invalid('done'));
  await assert.rejects(s.ackMany(topic, [null]), invalid('done[0]'));
  await assert.rejects(s.ackMany(topic, [job, { id: 'q' }]), invalid('done[1]'));
  await assert.rejects(s.ackMany(topic, [{ id: '', token: '1' }]), invalid('done[0].id'));
  await assert.rejects(s.ackMany(topic, [{ ...job, result: NaN }]), invalid('done[0].result'));
  await assert.rejects(s.ackMany(topic, [{ ...job, result: 10n }]), invalid('done[0].result'));
  await assert.rejects(s.ackAndLease(topic, [{ id: 'r' }], 1), invalid('done[0]'));
  await assert.rejects(s.ackAndLease(topic, 'abc', 1), invalid('done'));
  assert.equal((await s.get(topic, 'r')).state, 'reserved');
  assert.equal((await s.get(topic, 'q')).state, 'ready');
  assert.deepEqual(await s.ackMany(topic, []), []);
  assert.deepEqual(await s.ackMany(topic, [{ ...job, result: { a: 1 } }]), [true]);
  assert.equal((await s.stats(topic)).totalAcked, 1);
});

test('a result that is not valid Unicode or holds a non-finite number is refused', () => {
  for (const value of [NaN, Infinity, -Infinity, { a: NaN }, [1, Infinity], 'a\ud800b', '\udcff']) {
    assert.throws(() => encodeResult(value), invalid('result'), String(value));
  }
  assert.throws(() => encodeResult('ab\udc00', 'x'), /x: must be valid Unicode \(no lone surrogates\): one at character 2/);
  // inside JSON a lone surrogate is written as its escape, as Python's json.dumps writes it
  assert.equal(encodeResult({ a: '\ud800' }).toString(), '{"a":"\\ud800"}');
  assert.equal(encodeResult([1.5, 'é']).toString(), '[1.5,"\\u00e9"]');
});

test('kick and requeue check their limit as Python does: an integer from 1 to 10000', async () => {
  const { s, topic } = scheduler();
  const job = await reservedJob(s, topic);
  await s.bury(job, { reason: 'x' });
  for (const limit of [-1, 0, 'abc', 1.5, 10_001, null]) {
    await assert.rejects(s.kick(topic, '', { limit }), invalid('limit'), String(limit));
    await assert.rejects(s.kick(topic, 'r', { limit }), invalid('limit'), String(limit));
    await assert.rejects(s.requeue(topic, { limit }), invalid('limit'), String(limit));
  }
  assert.equal((await s.get(topic, 'r')).state, 'dead');
  assert.equal(await s.kick(topic, '', { limit: 10_000 }), 1);
  assert.deepEqual(await s.requeue(topic, { limit: 1 }), [0, 0, -1]);
});

test('put refuses an unknown option and a replace that is not a boolean', async () => {
  const { s, topic } = scheduler();
  await assert.rejects(s.put(topic, 'j', 'b', { delay: 5000 }), invalid('delay'));
  await assert.rejects(s.put(topic, 'j', 'b', { delayMs: 5000, ttr: 1 }), invalid('ttr'));
  for (const replace of ['no', 1, null]) {
    await assert.rejects(s.put(topic, 'j', 'b', { replace }), invalid('replace'), String(replace));
  }
  assert.equal(await s.get(topic, 'j'), null);
  assert.deepEqual(await s.put(topic, 'j', 'b', { delayMs: 5000, replace: false }), { status: 'created', version: 1 });
});

test('put refuses a delayMs with a runAtMs, as Python refuses delay with run_at', async () => {
  // Before, the delay was silently dropped and the job was due at runAtMs.
  const { s, topic } = scheduler();
  for (const delayMs of [5000, 0]) {
    await assert.rejects(s.put(topic, 'j', 'b', { runAtMs: Date.now(), delayMs }),
      (e) => e instanceof InvalidArgument && e.field === 'delayMs' && e.message === 'delayMs: give delayMs or runAtMs, not both');
  }
  assert.equal(await s.get(topic, 'j'), null);
  assert.equal((await s.put(topic, 'j', 'b', { runAtMs: Date.now() + 5000, delayMs: undefined })).status, 'created');
  assert.equal((await s.put(topic, 'k', 'b', { runAtMs: '', delayMs: 5000 })).status, 'created');
});

test("cron: Python's dialect (cronsim): L, LW, # and lower case are taken, '?' and 'H' are refused", () => {
  for (const expr of ['0 0 L * *', '0 0 LW * *', '0 0 lw * *', '0 0 l * *', '0 0 * * 1#2', '0 0 * * 5L', '0 0 * jan-mar thu']) {
    assert.equal(cronExpression(expr, 'UTC'), expr);
  }
  for (const expr of ['0 0 ? * *', '0 0 * * ?', 'H 0 * * *']) {
    assert.throws(() => cronExpression(expr, 'UTC'), invalid('cron'), expr);
  }
});

test('cron: over 1024 characters is refused naming cron before it is parsed, counted as Python counts them', () => {
  // a valid one of 200 KB was stored whole in its schedule's record
  for (const expr of [`${'0,'.repeat(100_000)}0 * * * *`, `${'0,'.repeat(508)}0 * * * *`]) {
    assert.throws(() => cronExpression(expr, 'UTC'),
      (err) => invalid('cron')(err) && err.message === 'cron: must be at most 1024 characters', `${expr.length}`);
  }
  // 1024 characters: 1024 UTF-16 units, or 1207 (a surrogate pair is one character, then refused by cronsim)
  assert.equal(cronExpression(`${'0,'.repeat(507)}0  * * * *`, 'UTC'), `${'0,'.repeat(507)}0 * * * *`);
  assert.throws(() => cronExpression(`${'\u{1f600}'.repeat(183)}${'0,'.repeat(416)}0 * * * *`, 'UTC'),
    (err) => invalid('cron')(err) && err.message.includes('Bad minute'));
});
