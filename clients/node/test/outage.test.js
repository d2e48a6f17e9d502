'use strict';
// The server while Redis is down: 503 at once, as the Python and Go servers answer, not after
// ioredis's retries; and `serve` logs an outage once, not at every reconnection attempt.
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { test } = require('node:test');
const Redis = require('ioredis');
const { Scheduler, createServer } = require('..');

const BIN = path.join(__dirname, '..', 'bin', 'redisched-node');

/** A loopback port nothing listens on. */
async function deadPort() {
  const probe = net.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function timed(promise) {
  const started = Date.now();
  const res = await promise;
  return { status: res.status, body: await res.json(), ms: Date.now() - started };
}

test('with Redis down, POST /schedule, POST /cancel and /healthz answer 503 at once', async (t) => {
  const redis = new Redis(`redis://127.0.0.1:${await deadPort()}/0`);
  redis.on('error', () => {}); // the outage is the point
  t.after(() => redis.disconnect());
  const server = createServer(new Scheduler(redis));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${server.address().port}`;
  const post = (route, body) => fetch(`${base}${route}`, { method: 'POST', body: JSON.stringify(body) });
  await new Promise((resolve) => setTimeout(resolve, 200)); // a failed connection attempt or two
  for (const [what, promise] of [['schedule', post('/schedule/x', { id: 'j', contents: 1 })],
    ['cancel', post('/cancel/x', { id: 'j' })], ['healthz', fetch(`${base}/healthz`)]]) {
    const got = await timed(promise);
    assert.equal(got.status, 503, `${what}: ${JSON.stringify(got.body)}`);
    assert.ok(got.ms < 1000, `${what} took ${got.ms} ms`);
  }
  const bad = await timed(post('/schedule/x', { contents: 1 }));
  assert.equal(bad.status, 400, 'bad input is refused as such, Redis or not');
});

test('a request sent while the first connection is being made waits for it', async (t) => {
  // Not an outage: `serve` says ready before its connection is up, and a 503 then was a regression.
  const url = process.env.REDISCHED_TEST_REDIS_URL;
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const redis = new Redis(url);
  t.after(() => redis.quit());
  const server = createServer(new Scheduler(redis));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  assert.notEqual(redis.status, 'ready');
  const res = await fetch(`http://127.0.0.1:${server.address().port}/healthz`);
  assert.equal(res.status, 200, JSON.stringify(await res.json()));
});

test('serve logs a Redis outage once, not at every reconnection attempt', async () => {
  const child = spawn(process.execPath, [BIN, 'serve', '--port=0'], {
    env: { ...process.env, REDISCHED_REDIS_URL: `redis://127.0.0.1:${await deadPort()}/0`, REDISCHED_API_TOKENS: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const ready = new Promise((resolve) => child.stdout.on('data', (d) => {
    stdout += d;
    if (stdout.includes('\n')) resolve(JSON.parse(stdout.split('\n')[0]));
  }));
  const { port } = await ready;
  await new Promise((resolve) => setTimeout(resolve, 1500)); // ioredis retries every 50..2000 ms
  const health = await timed(fetch(`http://127.0.0.1:${port}/healthz`));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.equal(health.status, 503);
  assert.ok(health.ms < 1000, `/healthz took ${health.ms} ms`);
  assert.doesNotMatch(stderr, /Unhandled error event/);
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0], /^redis: .*ECONNREFUSED.* \(reconnecting\)$/);
});
