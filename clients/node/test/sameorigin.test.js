'use strict';
// The server's same-origin guard, as the Python service's (src/redisched/http/sameorigin.py): a
// foreign Host is 400 bad_host (DNS rebinding), a cross-site POST 403 cross_site, before anything
// is read or stored; against REDISCHED_TEST_REDIS_URL.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const { test } = require('node:test');
const { Scheduler } = require('..');
const { listening, redis } = require('../testing/scheduler');

/** A request with exactly these headers (fetch would not send a Host of our choosing). */
function request(port, method, path, headers, body) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path,
      headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks)) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const topicName = () => `node-origin-${crypto.randomBytes(4).toString('hex')}`;

test('a Host that is not an IP address, localhost or an allowed host is 400 bad_host', async (t) => {
  const { port } = await listening(t, { allowedHosts: ['sched.example'] });
  const topic = topicName();
  for (const [method, path, body] of [['POST', `/schedule/${topic}`, { id: 'j', contents: 1 }], ['GET', '/healthz']]) {
    const got = await request(port, method, path, { host: `attacker.example:${port}` }, body);
    assert.equal(got.status, 400, `${method} ${path}`);
    assert.deepEqual(got.body, { error: { code: 'bad_host', field: 'Host',
      message: "this service does not answer for host 'attacker.example' (add it with --allowed-host)" } });
  }
  assert.equal(await new Scheduler(redis).get(topic, 'j'), null);
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `Sched.Example.:${port}`, '10.1.2.3']) {
    assert.equal((await request(port, 'GET', '/healthz', { host })).status, 200, host);
  }
});

test('allowedHosts * answers any Host', async (t) => {
  const { port } = await listening(t, { allowedHosts: ['*'] });
  assert.equal((await request(port, 'GET', '/healthz', { host: 'attacker.example' })).status, 200);
});

test('a POST from another origin or site is 403 cross_site and stores nothing', async (t) => {
  const { port } = await listening(t);
  const topic = topicName();
  const s = new Scheduler(redis);
  await s.put(topic, 'kept', 'x', { delayMs: 60_000 });
  const refused = [
    [{ origin: 'https://evil.example' }, 'Origin', "origin 'https://evil.example' is not this service's own"],
    [{ origin: `http://127.0.0.1:${port + 1}` }, 'Origin', `origin 'http://127.0.0.1:${port + 1}' is not this service's own`],
    [{ origin: 'null' }, 'Origin', "origin 'null' is not this service's own"],
    [{ 'sec-fetch-site': 'cross-site' }, 'Sec-Fetch-Site', 'the request comes from another site'],
    [{ 'sec-fetch-site': 'Cross-Site', origin: `http://127.0.0.1:${port}` }, 'Sec-Fetch-Site', 'the request comes from another site'],
  ];
  for (const [headers, field, why] of refused) {
    for (const [path, body] of [[`/schedule/${topic}`, { id: 'refused', contents: 1 }], [`/cancel/${topic}`, { id: 'kept' }]]) {
      const got = await request(port, 'POST', path, headers, body);
      assert.equal(got.status, 403, JSON.stringify(headers));
      assert.deepEqual(got.body, { error: { code: 'cross_site', field, message: `${why}: state-changing requests are refused` } });
    }
  }
  assert.equal(await s.get(topic, 'refused'), null);
  assert.notEqual(await s.get(topic, 'kept'), null);
  assert.equal((await request(port, 'GET', '/healthz', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status, 200,
    'a GET changes nothing: only the Host rule applies');
});

test('a same-origin or same-site POST, or one without those headers, is served', async (t) => {
  const { port } = await listening(t);
  const topic = topicName();
  for (const headers of [{}, { origin: `http://127.0.0.1:${port}` }, { origin: `http://LOCALHOST:${port}`, host: `localhost:${port}` },
    { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'same-site' }, { 'sec-fetch-site': 'none' }]) {
    const got = await request(port, 'POST', `/schedule/${topic}`, headers, { id: 'j', contents: 1 });
    assert.ok([200, 201].includes(got.status), `${JSON.stringify(headers)}: ${JSON.stringify(got.body)}`);
  }
});

test('the guard answers before the token check', async (t) => {
  const { port } = await listening(t, { tokens: ['first-token-0123456789'] });
  const got = await request(port, 'POST', `/schedule/${topicName()}`, { origin: 'https://evil.example' }, { id: 'j', contents: 1 });
  assert.equal(got.status, 403);
});
