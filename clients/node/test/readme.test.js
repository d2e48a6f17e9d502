'use strict';
// The main README's Node.js server commands work as written from the root of a clone.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { secretProblem } = require('..');

const ROOT = path.join(__dirname, '..', '..', '..');

/** The lines of the README's ```sh block that runs redisched-node. */
function serverBlock() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1].split('\n').filter(Boolean));
  const block = blocks.find((lines) => lines.some((line) => line.includes('redisched-node serve')));
  assert.ok(block, 'the README shows the Node server in a ```sh block');
  return block;
}

test('the README installs the Node modules before it runs the Node server', () => {
  // Before, it showed `node clients/node/bin/redisched-node serve ...` alone: on a fresh clone,
  // "Cannot find module 'ioredis'".
  const lines = serverBlock();
  const install = lines.findIndex((line) => /^\(cd clients\/node && npm ci\)/.test(line));
  const serve = lines.findIndex((line) => line.includes('redisched-node'));
  assert.ok(install >= 0 && install < serve, lines.join('\n'));
});

test('the README\'s Node server command runs as written from the root', () => {
  // `npm ci` is not run here (the suite runs with the modules installed): the command is, with
  // --help added so that it stops at once, and its secrets pass the rule serve applies.
  for (const line of serverBlock().filter((l) => /^node .*redisched-node/.test(l))) {
    const { status, stdout, stderr } = spawnSync('sh', ['-c', `${line} --help`], { cwd: ROOT, encoding: 'utf8', timeout: 10_000 });
    assert.equal(status, 0, `${line}: ${stderr}`);
    assert.match(stdout, /^usage: redisched-node serve/);
    for (const [, secret] of line.matchAll(/--secret[= ](\S+)/g)) assert.equal(secretProblem(secret), null, secret);
  }
});
