'use strict';
// bin/redisched-node as a user runs it, against REDISCHED_TEST_REDIS_URL (so a command that
// wrongly starts talks to a server the test owns), and webhookHandler's secrets.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');
const { InvalidArgument, webhookHandler, secretProblem } = require('..');

const BIN = path.join(__dirname, '..', 'bin', 'redisched-node');
const SHORT_KEY = 'must give a key of at least 16 bytes (whsec_ and the base64 of 16 bytes or more, or 16+ UTF-8 bytes)';
const NOT_BASE64 = 'must be whsec_ followed by base64 (Standard Webhooks), or not start with whsec_';
const GOOD = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** Run the command for at most 10 s (a server that wrongly started is killed: status null). */
function run(...args) {
  const url = process.env.REDISCHED_TEST_REDIS_URL;
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const { status, stdout, stderr } = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8', timeout: 10_000, env: { ...process.env, REDISCHED_REDIS_URL: url },
  });
  return { status, stdout, stderr };
}

test('every command prints its usage for --help and exits 0', () => {
  // Before, `serve --help` and `worker --help` were "--help needs a value", exit 2.
  for (const [args, usage] of [
    [['--help'], 'usage: redisched-node serve'], [['-h'], 'usage: redisched-node serve'],
    [['serve', '--help'], 'usage: redisched-node serve'], [['serve', '--port=0', '-h'], 'usage: redisched-node serve'],
    [['worker', '--help'], 'usage: redisched-node worker'], [['worker', 'm.js', '--help'], 'usage: redisched-node worker'],
  ]) {
    const got = run(...args);
    assert.equal(got.status, 0, `${args}: ${got.stderr}`);
    assert.ok(got.stdout.startsWith(usage), `${args}: ${got.stdout}`);
    assert.match(got.stdout, /--redis URL/);
    assert.equal(got.stderr, '');
  }
  assert.match(run('serve', '--help').stdout, /--secret S .*at least 16 bytes/);
  assert.match(run('worker', '--help').stdout, /--grace-ms N/);
});

test('an unknown option or argument is a usage error naming it, and nothing starts', () => {
  // Before, `serve --prot 7301` started on the default port, the misspelt option ignored.
  for (const [args, named] of [
    [['serve', '--port=0', '--prot', '7301'], 'no such option: --prot'],
    [['serve', '--port=0', '--prot=7301'], 'no such option: --prot'],
    [['--port=0', '--verbose', 'serve'], 'no such option: --verbose'],
    [['worker', 'testing/noop.js', '--port', '0'], 'redisched-node worker: no such option: --port'],
    [['serve', '--port=0', '-p', '7301'], 'no such option: -p'],
    [['serve', '--port=0', 'extra'], 'unexpected argument: extra'],
    [['serve', '--port=0', '--cluster=no'], '--cluster takes no value'],
    [['serve', '--port=70000'], '--port: must be an integer from 0 to 65535'],
    [['serve', '--port=0', '--timeout-ms=0'], '--timeout-ms: must be an integer from 1 to 300000'],
    [['serve', '--port=0', '--timeout-ms=300001'], '--timeout-ms: must be an integer from 1 to 300000'],
    [['sevre'], 'no such command: sevre'],
    [['worker'], 'MODULE is needed'],
  ]) {
    const got = run(...args);
    assert.equal(got.status, 2, `${args}: ${got.stdout} ${got.stderr}`);
    assert.ok(got.stderr.includes(named), `${args}: ${got.stderr}`);
    assert.match(got.stderr, /usage: redisched-node/);
    assert.equal(got.stdout, '', 'nothing started');
  }
});

/** Assert that `args` is a usage error whose message includes `named` (exit 2, nothing started). */
function assertUsageError(args, named) {
  const got = run(...args);
  assert.equal(got.status, 2, `${args}: ${got.stdout} ${got.stderr}`);
  assert.ok(got.stderr.includes(named), `${args}: ${got.stderr}`);
  assert.match(got.stderr, /usage: redisched-node/);
  assert.equal(got.stdout, '', 'nothing started');
}

test('an option or command named like an inherited Object property is unknown', () => {
  // Before, `serve --constructor x` started the server, `constructor --help` printed "usage:
  // undefined" and `toString` was a TypeError: the tables were read with Object.prototype's names.
  for (const [args, named] of [
    [['serve', '--port=0', '--constructor', 'x'], 'no such option: --constructor'],
    [['--constructor=x', 'serve', '--port=0'], 'no such option: --constructor'],
    [['worker', 'testing/noop.js', '--constructor', 'x'], 'no such option: --constructor'],
    [['constructor', '--help'], 'no such command: constructor'],
    [['toString'], 'no such command: toString'],
    [['hasOwnProperty', '--port=0'], 'no such command: hasOwnProperty'],
    [['__proto__'], 'no such command: __proto__'],
  ]) assertUsageError(args, named);
});

test('an empty value of an option is a usage error naming the option', () => {
  // Before, `--redis=` and `--host=` fell back to $REDISCHED_REDIS_URL and 127.0.0.1: the server
  // started on what the user had not asked for.
  for (const [args, named] of [
    [['serve', '--port=0', '--redis='], '--redis: must not be empty'],
    [['serve', '--port=0', '--redis', ''], '--redis: must not be empty'],
    [['serve', '--port=0', '--host='], '--host: must not be empty'],
    [['serve', '--port=0', '--prefix='], '--prefix: must not be empty'],
    [['serve', '--port='], '--port: must not be empty'],
    [['serve', '--port=0', '--push='], '--push: must not be empty'],
    [['serve', '--port=0', '--secret', ''], '--secret: must not be empty'],
    [['--redis=', 'worker', 'testing/noop.js'], '--redis: must not be empty'],
    [['worker', 'testing/noop.js', '--grace-ms='], '--grace-ms: must not be empty'],
  ]) assertUsageError(args, named);
});

test('every numeric option is range-checked before anything starts, naming the option', () => {
  // Before, `serve --concurrency 0 --push ...` listened, then failed in the Worker with
  // "concurrency: must be ..." (no --), and `worker --ttr-ms 0` got as far as loading the module.
  const push = ['--push', 't=http://127.0.0.1:9/hook'];
  for (const [args, named] of [
    [['serve', '--port=0', ...push, '--concurrency', '0'], '--concurrency: must be an integer from 1 to 10000'],
    [['serve', '--port=0', '--concurrency', '0'], '--concurrency: must be an integer from 1 to 10000'],
    [['serve', '--port=0', ...push, '--concurrency', '10001'], '--concurrency: must be an integer from 1 to 10000'],
    [['worker', 'testing/noop.js', '--concurrency', '0'], '--concurrency: must be an integer from 1 to 10000'],
    [['worker', 'testing/noop.js', '--concurrency', '10001'], '--concurrency: must be an integer from 1 to 10000'],
    [['worker', 'testing/noop.js', '--ttr-ms', '0'], '--ttr-ms: must be an integer from 1 to 31536000000'],
    [['worker', 'testing/noop.js', '--ttr-ms', '31536000001'], '--ttr-ms: must be an integer from 1 to 31536000000'],
    [['worker', 'testing/noop.js', '--grace-ms', '3153600000001'], '--grace-ms: must be an integer from 0 to 3153600000000'],
    [['serve', '--port', '65536'], '--port: must be an integer from 0 to 65535'],
  ]) assertUsageError(args, named);
});

test('serve refuses a --secret whose key is under 16 bytes, in the Python service\'s words', () => {
  // Before, `--secret short` was accepted: pushes were signed with a 5-byte key.
  for (const [secrets, named] of [
    [['shortkey'], `--secret: ${SHORT_KEY}`], [[GOOD, 'whsec_AAAA'], `--secret #2: ${SHORT_KEY}`],
    [['whsec_!!'], `--secret: ${NOT_BASE64}`],
  ]) {
    const args = ['serve', '--port=0', '--push', 't=http://127.0.0.1:9/hook', ...secrets.flatMap((s) => ['--secret', s])];
    const got = run(...args);
    assert.equal(got.status, 2, `${secrets}: ${got.stdout} ${got.stderr}`);
    assert.ok(got.stderr.includes(named), `${secrets}: ${got.stderr}`);
    assert.equal(got.stdout, '', 'nothing started');
  }
});

test('webhookHandler refuses secrets whose key is under 16 bytes, naming the secret', () => {
  const refused = [['shortkey', SHORT_KEY], ['x'.repeat(15), SHORT_KEY], [`whsec_${'A'.repeat(20)}`, SHORT_KEY],
    ['whsec_!!', NOT_BASE64], ['whsec_!!!!', NOT_BASE64], ['lone \ud800 surrogate here', 'must be valid Unicode (no lone surrogates)']];
  for (const [secret, message] of refused) {
    assert.equal(secretProblem(secret), message, secret);
    assert.throws(() => webhookHandler({ url: 'http://127.0.0.1:9/hook', secrets: [GOOD, secret] }),
      (e) => e instanceof InvalidArgument && e.field === 'secrets[1]' && e.message === `secrets[1]: ${message}`, secret);
  }
  for (const secret of [GOOD, 'x'.repeat(16), `whsec_${'A'.repeat(24)}`]) {
    assert.equal(secretProblem(secret), null, secret);
    assert.equal(typeof webhookHandler({ url: 'http://127.0.0.1:9/hook', secrets: [secret] }), 'function');
  }
});
