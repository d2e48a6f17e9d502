'use strict';
// bin/redisched-node as a user runs it, against REDISCHED_TEST_REDIS_URL (so a command that
// wrongly starts talks to a server the test owns), and webhookHandler's secrets.
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
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

const TOKEN = 'cli-token-0123456789abcdef';
const SHORT_TOKEN = "each token must be at least 16 characters, so that it cannot be guessed (try: python3 -c 'import secrets; print(secrets.token_urlsafe())')";
const EXPOSED = '0.0.0.0 is reachable from other machines: set API tokens (--token or REDISCHED_API_TOKENS), or pass --insecure to serve without authentication';

/** Run the command with `env` added (and no token or insecure variable unless given). */
function runWith(env, ...args) {
  const url = process.env.REDISCHED_TEST_REDIS_URL;
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const base = { ...process.env, REDISCHED_REDIS_URL: url };
  delete base.REDISCHED_API_TOKENS;
  delete base.REDISCHED_INSECURE;
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 10_000, env: { ...base, ...env } });
}

/** Start `serve` with `args` and `env`, wait for its ready line, call `use(port)`, then SIGTERM it
 * at once; its ready line and exit status. */
async function served(args, env, use = async () => {}) {
  const url = process.env.REDISCHED_TEST_REDIS_URL;
  assert.ok(url, 'set REDISCHED_TEST_REDIS_URL to a redis-server you own');
  const base = { ...process.env, REDISCHED_REDIS_URL: url };
  delete base.REDISCHED_API_TOKENS;
  delete base.REDISCHED_INSECURE;
  const child = spawn(process.execPath, [BIN, 'serve', '--port=0', ...args], { env: { ...base, ...env } });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  try {
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const ready = await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('{') && l.includes('"ready"'));
        if (line) resolve(JSON.parse(line));
      });
      exited.then((code) => reject(new Error(`${args}: exited ${code} before ready: ${out} ${err}`)));
    });
    await use(ready.port);
    return { ready, code: (child.kill('SIGTERM'), await exited) };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

test('serve refuses a --token under 16 characters, naming the option or the variable', () => {
  // Before, serve had no --token: the routes answered anyone.
  for (const [args, env, named] of [
    [['--token', 'short'], {}, `--token: ${SHORT_TOKEN}`],
    [['--token', TOKEN, '--token=0123456789abcde'], {}, `--token #2: ${SHORT_TOKEN}`],
    [[], { REDISCHED_API_TOKENS: 'short' }, `REDISCHED_API_TOKENS: ${SHORT_TOKEN}`],
    [[], { REDISCHED_API_TOKENS: `${TOKEN},short` }, `REDISCHED_API_TOKENS #2: ${SHORT_TOKEN}`],
    [['--token='], {}, '--token: must not be empty'],
    [['--insecure=yes'], {}, '--insecure takes no value'],
  ]) {
    const got = runWith(env, 'serve', '--port=0', ...args);
    assert.equal(got.status, 2, `${args} ${JSON.stringify(env)}: ${got.stdout} ${got.stderr}`);
    assert.ok(got.stderr.includes(`redisched-node serve: ${named}`), got.stderr);
    assert.match(got.stderr, /usage: redisched-node serve/);
    assert.equal(got.stdout, '', 'nothing started');
  }
});

test('serve refuses a --host other machines can reach without tokens, in the Python service\'s words', () => {
  // Before, `serve --host 0.0.0.0` served every network without authentication.
  for (const [args, env] of [
    [['--host', '0.0.0.0'], {}], [['--host=::'], {}], [['--host', '192.0.2.1'], {}],
    [['--host', '0.0.0.0'], { REDISCHED_INSECURE: '0' }], [['--host', '0.0.0.0'], { REDISCHED_API_TOKENS: ' , ' }],
  ]) {
    const got = runWith(env, 'serve', '--port=0', ...args);
    const host = args.at(-1).replace('--host=', '');
    assert.equal(got.status, 2, `${args}: ${got.stdout} ${got.stderr}`);
    assert.ok(got.stderr.includes(`redisched-node serve: --host: ${EXPOSED.replace('0.0.0.0', host)}`), got.stderr);
    assert.equal(got.stdout, '', 'nothing started');
  }
  const bad = runWith({ REDISCHED_INSECURE: 'maybe' }, 'serve', '--port=0', '--host', '0.0.0.0');
  assert.equal(bad.status, 2);
  assert.ok(bad.stderr.includes('REDISCHED_INSECURE: must be one of 1/0, true/false, yes/no, on/off, not "maybe"'), bad.stderr);
});

test('$REDISCHED_REDIS_CLUSTER is read as the Python service reads it: a bad value is a usage error', () => {
  // Before, any value but 1/true/yes (say "on", or a typo) silently meant a single server.
  for (const command of [['serve', '--port=0'], ['worker', 'handlers.js']]) {
    const got = runWith({ REDISCHED_REDIS_CLUSTER: 'maybe' }, ...command);
    assert.equal(got.status, 2, `${command}: ${got.stdout} ${got.stderr}`);
    assert.ok(got.stderr.includes(`redisched-node ${command[0]}: REDISCHED_REDIS_CLUSTER: must be one of 1/0, true/false, yes/no, on/off, not "maybe"`), got.stderr);
    assert.equal(got.stdout, '', 'nothing started');
  }
});

test('serve listens on a --host other machines can reach with --insecure or a token, and stops', async () => {
  for (const [args, env] of [
    [['--insecure'], {}], [[], { REDISCHED_INSECURE: '1' }], [['--token', TOKEN], {}], [[], { REDISCHED_API_TOKENS: TOKEN }],
  ]) {
    const { ready, code } = await served(['--host', '0.0.0.0', ...args], env);
    assert.equal(ready.ready, true);
    assert.equal(code, 0, `${args} ${JSON.stringify(env)}`);
  }
});

test('serve --token and $REDISCHED_API_TOKENS guard the routes; --token wins over the variable', async () => {
  const other = 'env-token-abcdefghijklmnop';
  const topic = `node-cli-auth-${require('node:crypto').randomBytes(4).toString('hex')}`;
  const post = (port, authorization) => fetch(`http://127.0.0.1:${port}/schedule/${topic}`, {
    method: 'POST', headers: authorization ? { authorization } : {}, body: '{"id": "x", "contents": 1}',
  }).then((res) => [res.status, res.headers.get('www-authenticate')]);
  await served(['--token', TOKEN, '--token', other], { REDISCHED_API_TOKENS: 'ignored-token-0123456789' }, async (port) => {
    assert.deepEqual(await post(port), [401, 'Bearer realm="redisched"']);
    assert.deepEqual(await post(port, 'Bearer ignored-token-0123456789'), [401, 'Bearer realm="redisched"']);
    assert.equal((await post(port, `Bearer ${other}`))[0], 201);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  });
  await served([], { REDISCHED_API_TOKENS: `${TOKEN}, ${other}` }, async (port) => {
    assert.equal((await post(port))[0], 401);
    assert.equal((await post(port, `Bearer ${TOKEN}`))[0], 200, 'the job above, replaced');
    assert.equal((await post(port, `Bearer ${other}`))[0], 200);
  });
});
