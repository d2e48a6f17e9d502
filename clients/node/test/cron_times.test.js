'use strict';
// The cron-time vectors (conformance/cron_times.json): when a cron schedule fires, computed as
// the Python client does, and the expressions it refuses, for the same reason.
// REDISCHED_VECTORS_DIR (conformance/vectors) locates them.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { cronTimes, cronExpression, timeZone } = require('../schedules');

const vectorsDir = process.env.REDISCHED_VECTORS_DIR || path.resolve(__dirname, '../../../conformance/vectors');
const cases = JSON.parse(fs.readFileSync(path.join(vectorsDir, '..', 'cron_times.json'), 'utf8'));

test('cron times', () => {
  assert.ok(cases.filter((c) => c.times).length >= 10);
  for (const c of cases.filter((c) => c.times)) {
    const expr = cronExpression(c.cron, timeZone(c.tz));
    assert.deepEqual(cronTimes(expr, c.tz, c.after_ms, c.count, c.end_ms), c.times, c.note);
  }
});

test('cron refusals', () => {
  assert.ok(cases.filter((c) => c.error).length >= 10);
  for (const c of cases.filter((c) => c.error)) {
    assert.throws(() => cronExpression(c.cron, timeZone(c.tz)), (err) => err.field === 'cron' && err.message.includes(c.error), JSON.stringify(c.cron));
  }
});

// conformance/time_zones.json: the zone names a new schedule takes, as the Python client takes them
// (any glue may refill a schedule's cron times).
test('time zones', () => {
  const zones = JSON.parse(fs.readFileSync(path.join(vectorsDir, '..', 'time_zones.json'), 'utf8'));
  assert.ok(zones.accepted.length >= 5 && zones.refused.length >= 10);
  for (const name of zones.accepted) assert.equal(timeZone(name), name);
  for (const name of zones.refused) {
    assert.throws(() => timeZone(name), (err) => err.field === 'tz' && err.message.includes('unknown time zone'), JSON.stringify(name));
  }
});
