'use strict';
// What the glue's tests wait for: a condition, and a Worker subscribed to its wake channels.
const assert = require('node:assert/strict');

const quiet = { info() {}, warn() {}, error() {} };

/** Resolves once `check()` (sync or async) is true; fails naming `what` after `ms`. */
async function until(check, what, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Starts `worker.run()`; resolves once it is subscribed (no put goes unnoticed from then on)
 * to {done}, the run's promise. */
async function running(worker) {
  let ready;
  const subscribed = new Promise((resolve) => { ready = resolve; });
  const done = worker.run({ onReady: ready });
  await subscribed;
  return { done };
}

module.exports = { quiet, until, running };
