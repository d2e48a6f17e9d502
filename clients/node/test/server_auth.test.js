'use strict';
// The server's bearer tokens (createServer's `tokens`), as the Python service checks them: every
// route but /healthz answers 401 without one of them, before anything is read or stored; against
// REDISCHED_TEST_REDIS_URL.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { test } = require('node:test');
const { InvalidArgument, Scheduler, createServer } = require('..');
const { isLoopback, tokenProblem } = require('../auth');
const { listening, redis } = require('../testing/scheduler');

const TOKENS = ['first-token-0123456789', 'second-token-abcdefghij'];
const UNAUTHORIZED = { error: { code: 'unauthorized', message: 'send Authorization: Bearer <token>', field: 'Authorization' } };

async function request(base, method, path, { authorization, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (authorization !== undefined) headers.authorization = authorization;
  const res = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  return { status: res.status, body: await res.json(), challenge: res.headers.get('www-authenticate') };
}

test('with tokens, every route but /healthz is 401 without an accepted token, and nothing is stored', async (t) => {
  const { base } = await listening(t, { tokens: TOKENS });
  const s = new Scheduler(redis);
  const topic = `node-auth-${crypto.randomBytes(4).toString('hex')}`;
  await s.put(topic, 'kept', 'x', { delayMs: 60_000 });
  const schedule = { id: 'refused', contents: { to: 'ada' } };
  for (const authorization of [undefined, '', `Bearer ${TOKENS[0]}x`, `Bearer ${TOKENS[0].slice(0, -1)}`,
    'Bearer wrong-token-0123456789', TOKENS[0], `Basic ${TOKENS[0]}`, `Bearer${TOKENS[0]}`, 'Bearer ', 'Bearer',
    `Token ${TOKENS[1]}`, `Bearer ${TOKENS[0]},${TOKENS[1]}`]) {
    for (const [method, path, body] of [['POST', `/schedule/${topic}`, schedule], ['POST', `/cancel/${topic}`, { id: 'kept' }],
      ['GET', '/nowhere', undefined], ['GET', `/schedule/${topic}`, undefined]]) {
      const got = await request(base, method, path, { authorization, body });
      assert.equal(got.status, 401, `${method} ${path} with ${JSON.stringify(authorization)}`);
      assert.deepEqual(got.body, UNAUTHORIZED);
      assert.equal(got.challenge, 'Bearer realm="redisched"');
    }
  }
  assert.equal(await s.get(topic, 'refused'), null);
  assert.notEqual(await s.get(topic, 'kept'), null, 'a refused cancel deletes nothing');
  assert.equal((await s.stats(topic)).totalPut, 1);
});

test('with tokens, each token is accepted, the scheme in any case', async (t) => {
  const { base } = await listening(t, { tokens: TOKENS });
  const s = new Scheduler(redis);
  const topic = `node-auth-${crypto.randomBytes(4).toString('hex')}`;
  for (const [i, authorization] of [`Bearer ${TOKENS[0]}`, `bearer ${TOKENS[1]}`, `BEARER   ${TOKENS[1]}  `].entries()) {
    const id = `job-${i}`;
    const put = await request(base, 'POST', `/schedule/${topic}`, { authorization, body: { id, contents: i, delay: 60 } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.deepEqual(put.body, { topic, id, version: 1, status: 'created' });
    assert.equal((await s.get(topic, id)).body.toString(), String(i));
    const cancel = await request(base, 'POST', `/cancel/${topic}`, { authorization, body: { id } });
    assert.deepEqual([cancel.status, cancel.body], [200, { id, cancelled: true }]);
    assert.equal(await s.get(topic, id), null);
  }
  const missing = await request(base, 'GET', '/nowhere', { authorization: `Bearer ${TOKENS[0]}` });
  assert.deepEqual([missing.status, missing.body.error.code], [404, 'not_found']);
});

test('/healthz needs no token', async (t) => {
  const { base } = await listening(t, { tokens: TOKENS });
  const got = await request(base, 'GET', '/healthz');
  assert.deepEqual([got.status, got.body], [200, { status: 'ok', redis: 'ok' }]);
  assert.equal((await request(base, 'POST', '/healthz')).status, 405, 'an open path, routed as before');
});

test('without tokens the server answers every request, as before', async (t) => {
  const { base } = await listening(t);
  const topic = `node-auth-${crypto.randomBytes(4).toString('hex')}`;
  const got = await request(base, 'POST', `/schedule/${topic}`, { body: { id: 'open', contents: 1 } });
  assert.equal(got.status, 201);
});

test('createServer refuses a token under 16 characters, or not printable, naming it', () => {
  assert.ok(redis, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const scheduler = new Scheduler(redis);
  for (const [tokens, field, words] of [
    [['x'.repeat(15)], 'tokens[0]', 'each token must be at least 16 characters'],
    [[TOKENS[0], 'short'], 'tokens[1]', 'each token must be at least 16 characters'],
    [['0123456789abcdef\n'], 'tokens[0]', 'each token must be 1 to 4096 printable characters'],
    [['x'.repeat(4097)], 'tokens[0]', 'each token must be 1 to 4096 printable characters'],
    [[''], 'tokens[0]', 'each token must be 1 to 4096 printable characters'],
  ]) {
    assert.throws(() => createServer(scheduler, { tokens }),
      (e) => e instanceof InvalidArgument && e.field === field && e.message.startsWith(`${field}: ${words}`), field);
  }
  assert.throws(() => createServer(scheduler, { tokens: TOKENS[0] }), (e) => e instanceof InvalidArgument && e.field === 'tokens');
  assert.equal(tokenProblem('x'.repeat(16)), null);
  assert.equal(tokenProblem('é'.repeat(16)), null, 'characters, not bytes');
});

test('isLoopback: 127.0.0.0/8, ::1 and localhost only', () => {
  for (const host of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', 'localhost']) assert.ok(isLoopback(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '192.168.1.1', 'example.com', 'localhost.example.com', '']) {
    assert.ok(!isLoopback(host), host);
  }
});
