'use strict';
// POST /schedule and /cancel refuse what the Python service refuses in the request's JSON (its
// http/reading.py), with its status, code and field: a key given twice, nesting deeper than 512
// levels, a number out of range, a lone surrogate escape. JSON.parse read each as another value
// (the last key, Infinity stored as null, a string with no UTF-8), and the job was stored.
// Against REDISCHED_TEST_REDIS_URL.
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { test } = require('node:test');
const { Scheduler } = require('..');
const { listening, redis } = require('../testing/scheduler');

async function post(base, path, text) {
  const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
  return { status: res.status, body: await res.json() };
}

const nested = (depth) => '['.repeat(depth) + ']'.repeat(depth);
const TWICE = (key) => `the JSON object has the key ${key} twice`;
const LONE = 'must be valid Unicode (no lone surrogates)';
const DEEP = 'the JSON is nested deeper than 512 levels';

// each as the Python service answers it: [request, code, field, message]
const REFUSED = [
  ['{"id":"j","contents":{"k":1,"k":2}}', 'invalid', 'contents.k', TWICE("'k'")],
  ['{"id":"a2","id":"j","contents":1}', 'invalid', 'id', TWICE("'id'")],
  ['{"id":"j","contents":{"a":1,"a":2},"contents":3}', 'invalid', 'contents', TWICE("'contents'")],
  ['{"id":"j","contents":[{"a":{"b":1,"c":{"d":1,"d":2}}}]}', 'invalid', 'contents[0].a.c.d', TWICE("'d'")],
  ['{"id":"j","contents":{"a":1,"b":1,"b":2,"a":2}}', 'invalid', 'contents.b', TWICE("'b'")],
  ['{"id":"j","contents":[{"a":{"c":1,"c":1}},{"b":1,"b":2}]}', 'invalid', 'contents[0].a.c', TWICE("'c'")],
  ['{"id":"j","contents":{"a":{"c":1,"c":1},"a":2}}', 'invalid', 'contents.a', TWICE("'a'")],
  ['{"id":"j","contents":[{}, "x", {"a":[],"\\u0061":1}]}', 'invalid', 'contents[2].a', TWICE("'a'")],
  ['{"id":"j","contents":{"a.b":{"it\'s":1,"it\'s":2}}}', 'invalid', 'contents["a.b"].it\'s', TWICE('"it\'s"')],
  ['{"id":"j","contents":{"\\u00e9 x\\u0007":{"z":1,"z":2}}}', 'invalid', 'contents["\\u00e9 x\\u0007"].z', TWICE("'z'")],
  ['{"id":"j","contents":{"\\u2028":1,"\\u2028":2}}', 'invalid', 'contents["\\u2028"]', TWICE("'\\u2028'")],
  [`{"id":"j","contents":${nested(513)}}`, 'too_deep', 'contents', DEEP],
  [`{"id":"j","contents":${nested(513).slice(0, 513)}}`, 'too_deep', 'contents', DEEP], // deep before malformed
  [`{"id":"j","delay":${nested(600)},"contents":1}`, 'too_deep', 'contents', DEEP],
  ['{"id":"j","contents":1e400}', 'invalid', 'contents', 'Number out of range'],
  ['{"id":"j","contents":-1e400}', 'invalid', 'contents', 'Number out of range'],
  ['{"id":"j","contents":1.7976931348623159e308}', 'invalid', 'contents', 'Number out of range'],
  ['{"id":"j","contents":{"a.b":[0, 1e400]}}', 'invalid', 'contents[...][1]', 'Number out of range'],
  ['{"id":"j","delay":1e400,"contents":1}', 'invalid', 'delay', 'Number out of range'],
  [`{"id":"j","contents":[1${'0'.repeat(4300)}]}`, 'invalid', 'contents[0]', 'Integer value out of range'],
  ['{"id":"j","contents":"\\ud800"}', 'invalid', 'contents', LONE],
  ['{"id":"j","contents":{"x":["ok","\\udc00"]}}', 'invalid', 'contents.x[1]', LONE],
  ['{"id":"j","contents":{"\\ud800":1}}', 'invalid', 'contents["\\ud800"]', LONE],
  ['{"id":"j","contents":["\\ud800",1e400]}', 'invalid', 'contents[0]', LONE], // the first in the text
  ['{"id":"j","contents":[1e400,"\\ud800"]}', 'invalid', 'contents[0]', 'Number out of range'],
  [`{"id":"j","contents":["\\udc00","${'a'.repeat(300_000)}"]}`, 'invalid', 'contents', LONE], // too long to locate
  [`{"id":"j","contents":[{"k":1,"k":2}],"delay":0}${' '.repeat(300_000)}`, 'invalid', 'contents', TWICE("'k'")],
];

test('POST /schedule refuses a key twice, too deep JSON, a number out of range or a lone surrogate as Python does', async (t) => {
  const { base } = await listening(t);
  const s = new Scheduler(redis);
  const topic = `node-json-${crypto.randomBytes(4).toString('hex')}`;
  await s.put(topic, 'j', 'kept', { delayMs: 60_000 });
  for (const [text, code, field, message] of REFUSED) {
    const got = await post(base, `/schedule/${topic}`, text);
    assert.deepEqual(got, { status: 400, body: { error: { code, field, message } } }, text.slice(0, 80));
  }
  assert.equal((await s.get(topic, 'j')).body.toString(), 'kept');
  assert.equal(await s.get(topic, 'a2'), null);
});

test('POST /cancel refuses its id twice and too deep JSON, naming no body field', async (t) => {
  const { base } = await listening(t);
  const s = new Scheduler(redis);
  const topic = `node-json-${crypto.randomBytes(4).toString('hex')}`;
  await s.put(topic, 'j', 'kept', { delayMs: 60_000 });
  for (const [text, code, field, message] of [['{"id":"j","id":"j"}', 'invalid', 'id', TWICE("'id'")],
    [`{"id":"j","x":${nested(513)}}`, 'too_deep', null, DEEP]]) {
    assert.deepEqual(await post(base, `/cancel/${topic}`, text), { status: 400, body: { error: { code, field, message } } }, text.slice(0, 80));
  }
  assert.notEqual(await s.get(topic, 'j'), null);
});

test('what Python accepts is stored as before: 512 levels, keys alike in two objects, tiny and big numbers', async (t) => {
  const { base } = await listening(t);
  const s = new Scheduler(redis);
  const topic = `node-json-${crypto.randomBytes(4).toString('hex')}`;
  for (const [contents, stored] of [[nested(512), nested(512)], ['[{"k":1},{"k":2,"v":{"k":3}}]', '[{"k":1},{"k":2,"v":{"k":3}}]'],
    ['[1e-400, 1.7976931348623157e308, "\\ud83d\\ude00", "[{\\"a\\":1,\\"a\\":2}]"]', '[0.0,1.7976931348623157e308,"😀","[{\\"a\\":1,\\"a\\":2}]"]']]) {
    const got = await post(base, `/schedule/${topic}`, `{"id":"j","contents":${contents}}`);
    assert.ok([200, 201].includes(got.status), JSON.stringify(got.body));
    assert.equal((await s.get(topic, 'j')).body.toString(), stored);
  }
});

// [contents sent, as the Python service stores it] (to_stored(msgspec.json.decode(contents))):
// JSON.parse stored 1.2345678901234568e+22 for the first, and put the key "1" before "b"
const EXACT = [
  ['{"order": 12345678901234567890123}', '{"order":12345678901234567890123}'],
  ['[9007199254740993, -12345678901234567890123, -0]', '[9007199254740993,-12345678901234567890123,0]'],
  ['{"b": 1, "1": 2}', '{"b":1,"1":2}'],
  ['[1e5, 1.0, -0.0, 1e22, 12345678901234567890123e0, 2.5e-5, 1e-7]',
    '[100000.0,1.0,-0.0,1e22,1.2345678901234568e22,0.000025,1e-7]'],
];

test('POST /schedule stores numbers and keys as the Python service: big integers exact, floats as msgspec writes them', async (t) => {
  const { base } = await listening(t);
  const s = new Scheduler(redis);
  const topic = `node-json-${crypto.randomBytes(4).toString('hex')}`;
  for (const [contents, stored] of EXACT) {
    const got = await post(base, `/schedule/${topic}`, `{"id": "j", "contents": ${contents}, "delay": 1e1}`);
    assert.ok([200, 201].includes(got.status), JSON.stringify(got.body));
    assert.equal((await s.get(topic, 'j')).body.toString(), stored);
  }
});
