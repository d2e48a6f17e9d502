'use strict';
// The cron-time vectors (conformance/cron_times.json): when a cron schedule fires, computed as
// the Python client does. REDISCHED_VECTORS_DIR (conformance/vectors) locates them.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');
const { cronTimes, cronExpression, timeZone } = require('../schedules');

const vectorsDir = process.env.REDISCHED_VECTORS_DIR || path.resolve(__dirname, '../../../conformance/vectors');
const cases = JSON.parse(fs.readFileSync(path.join(vectorsDir, '..', 'cron_times.json'), 'utf8'));

test('cron times', () => {
  assert.ok(cases.length >= 10);
  for (const c of cases) {
    const expr = cronExpression(c.cron, timeZone(c.tz));
    assert.deepEqual(cronTimes(expr, c.tz, c.after_ms, c.count, c.end_ms), c.times, c.note);
  }
});
