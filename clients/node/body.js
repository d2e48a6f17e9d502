'use strict';
/**
 * How job bodies (bytes) travel as JSON, as src/redisched/json_body.py does it: a JSON value is
 * stored as its compact encoding; stored bytes that are a JSON text read back as that value;
 * other bytes read back as {"$base64": "..."}, and writers accept that marker.
 */
const MARKER = '$base64';
const utf8 = new TextDecoder('utf-8', { fatal: true });

const isMarker = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
  && Object.keys(v).length === 1 && MARKER in v;

/** The bytes to store for a JSON body value; a TypeError naming `field` for a bad marker. */
function toStored(value, field = 'body') {
  if (!isMarker(value)) return Buffer.from(JSON.stringify(value), 'utf8');
  const text = value[MARKER];
  if (typeof text !== 'string') throw markerError('must be a base64 string', field);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) throw markerError('is not valid base64', field);
  return Buffer.from(text, 'base64');
}

function markerError(message, field) {
  const err = new TypeError(message);
  err.field = `${field}.${MARKER}`;
  return err;
}

/** The JSON text of stored bytes: the bytes themselves when they are JSON, else a marker. */
function toJsonText(data) {
  try {
    const text = utf8.decode(data);
    if (!isMarker(JSON.parse(text))) return text;
  } catch {
    // not UTF-8 or not JSON: wrapped below
  }
  return JSON.stringify({ [MARKER]: Buffer.from(data).toString('base64') });
}

module.exports = { MARKER, toStored, toJsonText };
