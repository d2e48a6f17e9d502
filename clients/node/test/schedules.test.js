'use strict';
// Typed schedule methods and the cron refill on a fixed clock, against REDISCHED_TEST_REDIS_URL.
// The expected values are the Python client's (src/redisched/schedule_ops.py, recurrence.py).
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { after, test } = require('node:test');
const Redis = require('ioredis');
const { Scheduler, VersionConflict, InvalidArgument } = require('../redisched');
const { cronTimes } = require('../schedules');

const url = process.env.REDISCHED_TEST_REDIS_URL;
const redis = url ? new Redis(url, { maxRetriesPerRequest: 1 }) : null;
after(() => redis && redis.quit());

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0); // a Tuesday

function scheduler(now = T0) {
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const clock = { now };
  const s = new Scheduler(redis, { clock: () => clock.now });
  return { s, clock, topic: `node-sched-${crypto.randomBytes(4).toString('hex')}` };
}

test('an interval schedule is created, read, listed, replaced with if_version and deleted', async () => {
  const { s, clock, topic } = scheduler(T0 + 400);
  const made = await s.schedule(topic, 'tick', 'payload', { everyMs: 60_000, priority: 3, ttrMs: 5000 });
  assert.deepEqual({ ...made, body: made.body.toString() }, {
    topic, id: 'tick', version: 1, cron: null, everyMs: 60_000, tz: 'UTC', nextRunAtMs: T0 + 1000,
    startAtMs: null, endAtMs: null, lastRunAtMs: null, priority: 3, ttrMs: 5000, maxAttempts: 25,
    body: 'payload',
  });
  assert.equal((await s.get(topic, 'tick@2030-01-01T00:00:01Z')).state, 'scheduled');
  clock.now = T0 + 1000;
  const [job] = await s.reserve(topic);
  assert.equal(job.id, 'tick@2030-01-01T00:00:01Z');
  const read = await s.getSchedule(topic, 'tick');
  assert.equal(read.nextRunAtMs, T0 + 61_000);
  assert.equal(read.lastRunAtMs, T0 + 1000);
  await assert.rejects(s.schedule(topic, 'tick', 'x', { everyMs: 5000, ifVersion: 7 }), VersionConflict);
  const replaced = await s.schedule(topic, 'tick', 'x', { everyMs: 5000, ifVersion: 1 });
  assert.equal(replaced.version, 2);
  await s.schedule(topic, 'a-first', 'y', { everyMs: 1000 });
  assert.deepEqual((await s.schedules(topic)).map((x) => x.id), ['a-first', 'tick']);
  await assert.rejects(s.unschedule(topic, 'tick', { ifVersion: 1 }), VersionConflict);
  assert.equal(await s.unschedule(topic, 'tick', { ifVersion: 2 }), true);
  assert.equal(await s.unschedule(topic, 'tick'), false);
  assert.equal(await s.getSchedule(topic, 'tick'), null);
  assert.deepEqual(await s.schedules(`${topic}-none`), []);
});

test('a cron schedule holds 48 times in its zone and is refilled as they run out', async () => {
  const { s, clock, topic } = scheduler();
  const made = await s.schedule(topic, 'daily', 'b', { cron: '30  9 * * *', tz: 'Europe/Berlin' });
  assert.equal(made.cron, '30 9 * * *');
  assert.equal(made.nextRunAtMs, Date.UTC(2030, 0, 1, 8, 30)); // 09:30 CET
  const left = async () => (await s.call('get_schedule', topic, { id: ['daily'] }))[0][13];
  assert.equal(await left(), 47);
  // Run 33 occurrences: 14 times are left, under the refill mark (16), so the ack refills.
  for (let day = 0; day < 33; day++) {
    clock.now = made.nextRunAtMs + day * 86_400_000;
    const [job] = await s.reserve(topic);
    assert.ok(job, `occurrence ${day}`);
    await s.ack(job, { day });
  }
  assert.equal(await left(), 47);
  const last = (await s.call('get_schedule', topic, { id: ['daily'] }))[0][14];
  assert.equal(last, Date.UTC(2030, 2, 22, 8, 30)); // day 80: still CET
  assert.equal(await redis.zcard(`redisched:{${topic}}:refill`), 0);
});

test('deleting the pending occurrence skips one run; 60 in a row refill the cron times, and a replace goes on after them', async () => {
  const { s, clock, topic } = scheduler(T0 + 30_000);
  await s.schedule(topic, 'm', 'b', { cron: '* * * * *' });
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  for (let minute = 1; minute <= 60; minute++) {
    assert.equal(await s.delete(topic, `m@${iso(T0 + minute * 60_000)}`), true, `minute ${minute}`);
  }
  const read = await s.getSchedule(topic, 'm');
  assert.equal(read.nextRunAtMs, T0 + 61 * 60_000); // more than the 48 times held: refilled
  assert.equal(read.lastRunAtMs, T0 + 60 * 60_000); // the last one skipped
  // the replace's first 48 times from now all come before it: schedule.lua names the time
  // they must come after, and the glue sends those
  const replaced = await s.schedule(topic, 'm', 'new', { cron: '* * * * *' });
  assert.equal(replaced.version, 2);
  assert.equal(replaced.nextRunAtMs, T0 + 61 * 60_000); // the pending one, replaced in place
  assert.equal((await s.get(topic, `m@${iso(T0 + 61 * 60_000)}`)).state, 'scheduled');
  clock.now = T0 + 61 * 60_000;
  const [job] = await s.reserve(topic);
  assert.equal(job.id, `m@${iso(T0 + 61 * 60_000)}`);
  assert.equal(job.body.toString(), 'new');
});

test('aborting the pending occurrence skips one run and reads aborted; a running one ends that run alone', async () => {
  const { s, clock, topic } = scheduler(T0 + 30_000);
  await s.schedule(topic, 'm', 'b', { cron: '* * * * *' });
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const skipped = `m@${iso(T0 + 60_000)}`;
  assert.equal(await s.abort(topic, skipped, { reason: 'holiday' }), true);
  const [outcome, , , , , , ...events] = await s.call('history', topic, { id: skipped });
  assert.deepEqual([outcome, events[events.length - 1][0], events[events.length - 1][4]], ['aborted', 'aborted', 'holiday']);
  let read = await s.getSchedule(topic, 'm');
  assert.deepEqual([read.nextRunAtMs, read.lastRunAtMs], [T0 + 120_000, T0 + 60_000]);
  assert.equal((await s.get(topic, `m@${iso(T0 + 120_000)}`)).state, 'scheduled');
  clock.now = T0 + 120_000;
  const [running] = await s.reserve(topic);
  assert.equal(running.id, `m@${iso(T0 + 120_000)}`);
  assert.equal(await s.abort(topic, running.id), true); // its successor was put when it was leased
  read = await s.getSchedule(topic, 'm');
  assert.deepEqual([read.nextRunAtMs, read.lastRunAtMs], [T0 + 180_000, T0 + 120_000]);
  assert.equal((await s.stats(topic)).scheduled, 1); // nothing doubled
  // 60 in a row: the cron times run low and the aborts refill them (the refill pipeline)
  for (let minute = 3; minute <= 62; minute++) {
    assert.equal(await s.abort(topic, `m@${iso(T0 + minute * 60_000)}`), true, `minute ${minute}`);
  }
  read = await s.getSchedule(topic, 'm');
  assert.deepEqual([read.nextRunAtMs, read.lastRunAtMs], [T0 + 63 * 60_000, T0 + 62 * 60_000]);
  assert.equal(await redis.zcard(`redisched:{${topic}}:refill`), 0);
});

test('cron times follow the zone, skip to end_at and agree with the Python client', () => {
  const berlin = cronTimes('0 12 * * *', 'Europe/Berlin', Date.UTC(2030, 2, 30), 2);
  assert.deepEqual(berlin, [Date.UTC(2030, 2, 30, 11), Date.UTC(2030, 2, 31, 10)]); // CET, then CEST
  assert.deepEqual(cronTimes('0 0 1 1 *', 'UTC', T0, 5, Date.UTC(2031, 5, 1)), [Date.UTC(2031, 0, 1)]);
  assert.deepEqual(cronTimes('0 0 30 2 *', 'UTC', T0, 3), []);
  // DST as the Python client (recurrence.py): these are its cron_times for Europe/Berlin.
  const at = (m, d, h, min = 0) => Date.UTC(2026, m - 1, d, h, min);
  const cases = [
    ['30 2 * * *', at(3, 28, 0), [at(3, 28, 1, 30), at(3, 29, 1), at(3, 30, 0, 30)]],
    ['30 2 * * *', at(10, 24, 0), [at(10, 24, 0, 30), at(10, 25, 0, 30), at(10, 26, 1, 30)]],
    ['0 3 * * *', at(3, 28, 0), [at(3, 28, 2), at(3, 29, 1), at(3, 30, 1)]],
    ['*/30 * * * *', at(10, 25, 0), [at(10, 25, 0, 30), at(10, 25, 1), at(10, 25, 1, 30), at(10, 25, 2)]],
    ['0,30 2 * * *', at(3, 28, 0), [at(3, 28, 1), at(3, 28, 1, 30), at(3, 29, 1), at(3, 30, 0)]],
  ];
  for (const [expr, after, want] of cases) {
    assert.deepEqual(cronTimes(expr, 'Europe/Berlin', after, want.length), want, expr);
  }
});

test('bad arguments name the field and change nothing', async () => {
  const { s, topic } = scheduler();
  const bad = [
    [{ everyMs: 1000, cron: '* * * * *' }, 'cron'], [{}, 'cron'], [{ everyMs: 1500 }, 'everyMs'],
    [{ everyMs: 500 }, 'everyMs'], [{ cron: '* * * *' }, 'cron'], [{ cron: '61 * * * *' }, 'cron'],
    [{ cron: '0 0 30 2 *' }, 'cron'], [{ cron: '* * * * *', tz: 'Mars/Base' }, 'tz'],
    [{ cron: `${'0,'.repeat(100_000)}0 * * * *` }, 'cron'],
    [{ cron: '* * * * *', tz: '../etc/passwd' }, 'tz'], [{ everyMs: 1000, priority: 1.5 }, 'priority'],
    [{ everyMs: 1000, ttrMs: 0 }, 'ttrMs'], [{ everyMs: 1000, maxAttempts: 0 }, 'maxAttempts'],
    [{ everyMs: 1000, ifVersion: -1 }, 'ifVersion'], [{ everyMs: 1000, startAtMs: 'soon' }, 'startAtMs'],
    [{ everyMs: 1000, startAtMs: T0, endAtMs: T0 }, 'endAtMs'], [{ everyMs: 1000, colour: 'red' }, 'colour'],
    // already past by the scripts' clock (here the test's): schedule.lua refuses it
    [{ everyMs: 1000, endAtMs: T0 - 1000 }, 'endAtMs'], [{ cron: '* * * * *', endAtMs: T0 }, 'endAtMs'],
    // the epoch is past too (0 is schedule.lua's "no end": it was a schedule for ever)
    [{ everyMs: 1000, endAtMs: 0 }, 'endAtMs'], [{ cron: '* * * * *', endAtMs: new Date(0) }, 'endAtMs'],
  ];
  for (const [options, field] of bad) {
    await assert.rejects(s.schedule(topic, 'x', 'b', options),
      (err) => err instanceof InvalidArgument && err.field === field, JSON.stringify(options));
  }
  await assert.rejects(s.schedule(topic, '', 'b', { everyMs: 1000 }), (e) => e.field === 'id');
  await assert.rejects(s.schedule(topic, 'x'.repeat(1004), 'b', { everyMs: 1000 }), (e) => e.field === 'id');
  await assert.rejects(s.schedule(topic, 'x', 42, { everyMs: 1000 }), (e) => e.field === 'body');
  await assert.rejects(s.unschedule(topic, 'x', { ifVersion: 0 }), (e) => e.field === 'ifVersion');
  await assert.rejects(s.ack({ topic, id: 'x', token: '1' }, 10n), (e) => e.field === 'result');
  assert.deepEqual(await s.schedules(topic), []);
  assert.equal(await redis.exists(`redisched:{${topic}}:jobs`), 0);
});
