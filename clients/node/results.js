'use strict';
/**
 * A job's result as stored, as in the Python client (src/redisched/results.py): a Buffer as it
 * is, a string as UTF-8, null/undefined as none (an empty result), anything else as compact JSON
 * with non-ASCII escaped (Python's json.dumps output). ack.lua keeps the first 64 KiB and says
 * in the acked event when it cut a longer one.
 */
const { InvalidArgument } = require('./schedules');

const RESULT_LIMIT = 64 * 1024;
const NON_ASCII = /[\u007f-\uffff]/g;

/** A result as a Buffer, or '' for none; an InvalidArgument when it is not JSON-encodable. */
function encodeResult(value, field = 'result') {
  if (value === null || value === undefined) return '';
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === 'string') return Buffer.from(wellFormed(value, field), 'utf8');
  let text;
  try {
    text = JSON.stringify(value, finiteNumbers);
  } catch (err) {
    throw new InvalidArgument(field, `must be a Buffer, a string or JSON-encodable: ${err.message}`);
  }
  if (text === undefined) {
    throw new InvalidArgument(field, `must be a Buffer, a string or JSON-encodable, not a ${typeof value}`);
  }
  return Buffer.from(text.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** A string that has a UTF-8 form (no lone surrogate, which Buffer.from would turn into U+FFFD),
 * as Python's results.encode requires; the message names the character, counted as code points. */
function wellFormed(value, field) {
  if (value.isWellFormed()) return value;
  const at = [...value].findIndex((c) => c.length === 1 && c >= '\ud800' && c <= '\udfff');
  throw new InvalidArgument(field, `must be valid Unicode (no lone surrogates): one at character ${at}`);
}

/** JSON.stringify's replacer refusing NaN and the infinities (JSON has no such numbers; it would
 * write null), as Python's json.dumps(allow_nan=False) refuses them. */
function finiteNumbers(key, value) {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new TypeError(`${value} is not JSON (out of range float values are not JSON compliant)`);
  }
  return value;
}

module.exports = { encodeResult, RESULT_LIMIT };
