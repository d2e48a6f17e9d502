'use strict';
// The package exports what index.d.ts declares, and nothing else: an undeclared helper (body.js's
// jsonFaults, redisched.js's parseScript...) was reachable at runtime, an API nobody promised.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { test } = require('node:test');

test('the runtime exports are the values index.d.ts declares', () => {
  const types = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  const declared = [...types.matchAll(/^export (?:class|function|const) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(Object.keys(require('..')).sort(), [...new Set(declared)].sort());
});
