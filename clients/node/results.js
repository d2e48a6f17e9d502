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
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new InvalidArgument(field, `must be a Buffer, a string or JSON-encodable: ${err.message}`);
  }
  if (text === undefined) {
    throw new InvalidArgument(field, `must be a Buffer, a string or JSON-encodable, not a ${typeof value}`);
  }
  return Buffer.from(text.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

module.exports = { encodeResult, RESULT_LIMIT };
