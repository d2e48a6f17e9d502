'use strict';
// The main README's Node.js server commands work as written from the root of a clone, and its
// Worker sample runs and stops on SIGTERM (against REDISCHED_TEST_REDIS_URL).
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { test } = require('node:test');
const Redis = require('ioredis');
const { Scheduler, secretProblem } = require('..');

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

/** The README's ```js block with the Node Worker. */
function workerSample() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const sample = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]).find((code) => code.includes('new Worker('));
  assert.ok(sample, 'the README shows the Node Worker in a ```js block');
  return sample;
}

test('the README\'s Worker sample runs as written and exits on SIGTERM', async (t) => {
  // Before, it mixed require with top-level await (a SyntaxError in CommonJS), and once run()
  // resolved, the sample's own ioredis connection kept the process alive.
  const url = process.env.REDISCHED_TEST_REDIS_URL;
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const topic = `node_readme_${crypto.randomBytes(4).toString('hex')}`; // a bare object key in the sample
  const code = workerSample()
    .replace("require('redisched')", `require(${JSON.stringify(path.join(__dirname, '..'))})`)
    .replace("'redis://127.0.0.1:6379/0'", JSON.stringify(url))
    .replace(/\bemails\b/g, topic);
  const child = spawn(process.execPath, ['-e', `const send = async () => true;\n${code}`],
    { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (status) => resolve(status)));
  const redis = new Redis(url);
  t.after(() => redis.quit());
  const s = new Scheduler(redis);
  for (let waited = 0; !(await s.get(topic, 'welcome-42')); waited += 50) {
    assert.ok(waited < 10_000 && child.exitCode === null, `the sample did not put its job: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, 300)); // the worker starts
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const status = await exited;
  clearTimeout(timer);
  assert.equal(status, 0, `the sample did not exit on SIGTERM (${status}): ${stderr}`);
  await s.delete(topic, 'welcome-42');
});
