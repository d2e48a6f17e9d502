'use strict';
// Job bodies as JSON (body.js), refused in the Python service's words (src/redisched/json_body.py).
const assert = require('node:assert/strict');
const { test } = require('node:test');
const { toStored } = require('..');

test('a $base64 marker that is not a string, or not strict base64, is refused naming the marker', () => {
  for (const [text, message] of [[null, 'must be a base64 string'], [12, 'must be a base64 string'],
    [['AA=='], 'must be a base64 string'], ['/w==\n', 'is not valid base64'], ['/w=', 'is not valid base64']]) {
    assert.throws(() => toStored({ $base64: text }, 'contents'),
      (e) => e.field === 'contents.$base64' && e.message === message, JSON.stringify(text));
  }
  assert.deepEqual(toStored({ $base64: '/w==' }), Buffer.from([0xff]));
});
