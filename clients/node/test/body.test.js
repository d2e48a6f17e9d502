'use strict';
// Job bodies as JSON (body.js), refused in the Python service's words (src/redisched/json_body.py).
const assert = require('node:assert/strict');
const { test } = require('node:test');
const { toStored } = require('..');
const { exactJson, memberTexts } = require('../body');

test('a $base64 marker that is not a string, or not strict base64, is refused naming the marker', () => {
  for (const [text, message] of [[null, 'must be a base64 string'], [12, 'must be a base64 string'],
    [['AA=='], 'must be a base64 string'], ['/w==\n', 'is not valid base64'], ['/w=', 'is not valid base64']]) {
    assert.throws(() => toStored({ $base64: text }, 'contents'),
      (e) => e.field === 'contents.$base64' && e.message === message, JSON.stringify(text));
  }
  assert.deepEqual(toStored({ $base64: '/w==' }), Buffer.from([0xff]));
});

// [sent, as the Python service stores it]: to_stored(msgspec.json.decode(sent)) in json_body.py
const STORED = [
  ['12345678901234567890123', '12345678901234567890123'],
  ['-12345678901234567890123', '-12345678901234567890123'],
  ['9007199254740993', '9007199254740993'],
  [`1${'0'.repeat(4299)}`, `1${'0'.repeat(4299)}`],
  ['-0', '0'],
  ['[0, -0, 1, -1]', '[0,0,1,-1]'],
  ['1e5', '100000.0'],
  ['1E+2', '100.0'],
  ['1.0', '1.0'],
  ['1.50', '1.5'],
  ['-0.0', '-0.0'],
  ['0e0', '0.0'],
  ['1e-400', '0.0'],
  ['1.7976931348623157e308', '1.7976931348623157e308'],
  ['5e-324', '5e-324'],
  ['1e15', '1000000000000000.0'],
  ['1e16', '1e16'],
  ['9999999999999998.0', '9999999999999998.0'],
  ['1e22', '1e22'],
  ['0.00001', '0.00001'],
  ['2.5e-5', '0.000025'],
  ['0.000001', '1e-6'],
  ['-1e-6', '-1e-6'],
  ['1e-7', '1e-7'],
  ['12345678901234567890123e0', '1.2345678901234568e22'],
  ['123456789012345678901234567890.5', '1.2345678901234568e29'],
  ['1.2345678901234567890123', '1.2345678901234567'],
  ['0.1', '0.1'],
  ['-123.456e-2', '-1.23456'],
  ['{"b":1,"1":2,"0":[],"a":{"2":null,"x":true}}', '{"b":1,"1":2,"0":[],"a":{"2":null,"x":true}}'],
  [' { "a" : [ 1 , 2 ] ,\n\t"b" : false } ', '{"a":[1,2],"b":false}'],
  ['"\\u00e9\\/\\u001F\\"\\\\ \\ud83d\\ude00 \\u2028"', '"é/\\u001f\\"\\\\ 😀 \u2028"'],
  ['{"\\u0031":1, "k\\n": "v"}', '{"1":1,"k\\n":"v"}'],
  ['"1e5 12345678901234567890123 {\\"1\\":2}"', '"1e5 12345678901234567890123 {\\"1\\":2}"'],
];

test('a JSON value is stored as the Python service stores it: integers exact, floats as msgspec writes them, keys in order', () => {
  for (const [sent, stored] of STORED) {
    assert.equal(exactJson(sent), stored, sent.slice(0, 40));
  }
});

test('each member of a request is found as sent, wherever white space or escapes are', () => {
  const request = ' {"id" : "a\\"}", "contents":{"n":[12345678901234567890123, 1e5, "]"]} ,\n"delay" : 1.5 , "\\u0078":{},"t":true} ';
  assert.deepEqual(Object.fromEntries(memberTexts(request)), {
    id: '"a\\"}"', contents: '{"n":[12345678901234567890123, 1e5, "]"]}', delay: '1.5', x: '{}', t: 'true',
  });
});
