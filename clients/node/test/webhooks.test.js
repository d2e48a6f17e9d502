'use strict';
// The webhook vectors (conformance/webhooks.json): the webhooks the Python service takes, and
// the field and words of its refusals, as webhookHandler and `serve --push/--secret` must.
// REDISCHED_VECTORS_DIR (conformance/vectors) locates them.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { InvalidArgument, webhookHandler } = require('..');

const vectorsDir = process.env.REDISCHED_VECTORS_DIR || path.resolve(__dirname, '../../../conformance/vectors');
const cases = JSON.parse(fs.readFileSync(path.join(vectorsDir, '..', 'webhooks.json'), 'utf8'));
const BIN = path.join(__dirname, '..', 'bin', 'redisched-node');
const TIMEOUT_MS = 'must be more than 0 and at most 300000 ms';

/** webhookHandler's options for a vector's webhook: its timeout in seconds becomes timeoutMs. */
function options(webhook) {
  const given = { ...webhook };
  if ('timeout' in given) {
    given.timeoutMs = typeof given.timeout === 'number' ? given.timeout * 1000 : given.timeout;
    delete given.timeout;
  }
  return given;
}

/** The field webhookHandler names for the Python service's `field` (`webhook.url`: `url`). */
function glueField(field) {
  return field === 'webhook.timeout' ? 'timeoutMs' : field.slice('webhook.'.length);
}

test('webhooks', () => {
  assert.ok(cases.filter((c) => c.error).length >= 40 && cases.filter((c) => !c.error).length >= 15);
  for (const c of cases) {
    const make = () => webhookHandler(options(c.webhook));
    if (!c.error) {
      assert.equal(typeof make(), 'function', c.note);
      continue;
    }
    const field = glueField(c.field);
    const message = field === 'timeoutMs' ? TIMEOUT_MS : c.error;
    assert.throws(make, (e) => {
      assert.ok(e instanceof InvalidArgument, `${c.note}: ${e}`);
      assert.equal(e.message, `${field}: ${message}`, c.note);
      assert.equal(e.field, field, c.note);
      return true;
    }, c.note);
  }
});

test('webhookHandler needs its options as an object', () => {
  for (const given of [undefined, null, 'https://example.com/hook']) {
    assert.throws(() => webhookHandler(given), (e) => e instanceof InvalidArgument && e.field === 'options', String(given));
  }
});

/** The words `serve` refuses a vector's webhook with, or null if options cannot give it. */
function serveRefusal({ url, secrets = [], timeout }, field, error) {
  const strings = Array.isArray(secrets) && secrets.every((s) => typeof s === 'string');
  if (typeof url !== 'string' || !strings || timeout !== undefined) return null;
  if (field === 'webhook.url') return `--push t=${url}: ${error}`;
  const index = /\[(\d)\]$/.exec(field);
  const which = index && secrets.length > 1 ? ` #${Number(index[1]) + 1}` : '';
  return `--secret${which}: ${error}`;
}

test('serve refuses the webhooks the Python service refuses, in its words', () => {
  // Before, `--push t=ftp://x/` started a server, as did 3 secrets or one of 600 characters.
  const url = process.env.REDISCHED_TEST_REDIS_URL;
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  let checked = 0;
  for (const c of cases.filter((c) => c.error)) {
    const words = serveRefusal(c.webhook, c.field, c.error);
    if (words === null) continue;
    const args = ['serve', '--port=0', '--push', `t=${c.webhook.url}`,
      ...(c.webhook.secrets || []).flatMap((s) => ['--secret', s])];
    const got = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8', timeout: 10_000, env: { ...process.env, REDISCHED_REDIS_URL: url },
    });
    assert.equal(got.status, 2, `${c.note}: ${got.stdout} ${got.stderr}`);
    assert.ok(got.stderr.startsWith(`redisched-node serve: ${words}\n`), `${c.note}: ${got.stderr}`);
    assert.equal(got.stdout, '', `${c.note}: nothing started`);
    checked++;
  }
  assert.ok(checked >= 30, `${checked} checked`);
});

test('a webhook URL with user:password@ delivers with HTTP Basic credentials, as Python does', async () => {
  const http = require('node:http');
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address();
    const deliver = webhookHandler({ url: `http://ad%40min:p%3Ass@127.0.0.1:${port}/hook`, secrets: [] });
    const job = { topic: 't', id: 'j', body: Buffer.from('{}'), attempts: 1, version: 1, token: 'x',
      runAtMs: 0 };
    await deliver(job);
    assert.deepEqual(seen, [`Basic ${Buffer.from('ad@min:p:ss').toString('base64')}`]);
    const refused = webhookHandler({ url: 'http://u:secret@127.0.0.1:9/hook', secrets: [] });
    await assert.rejects(refused(job), (err) => !err.message.includes('secret') && err.message.includes('u:***@'));
  } finally {
    server.close();
  }
});
