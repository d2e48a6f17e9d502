'use strict';
/**
 * Ids stored as bytes that are not UTF-8 (a raw script call stores any bytes), read and sent
 * back as the Python glue does (convert.stored_name, validate.stored_id): each byte that is not
 * part of a UTF-8 character becomes a lone surrogate U+DC80..U+DCFF (Python's
 * "surrogateescape"), so such a job's `id` is a string that the calls on an existing job turn
 * back into the same bytes, and both glues name that job with the same string.
 */
const { isUtf8 } = require('node:buffer');

const ESCAPE_BASE = 0xdc00;

/** The length of the UTF-8 character at data[i], or 0 when no valid one starts there. */
function characterLength(data, i) {
  if (data[i] < 0x80) return 1;
  for (let n = 2; n <= 4 && i + n <= data.length; n++) {
    // a lead byte alone, or with a byte that is no continuation, never passes: the first n
    // that does is the whole character
    if (isUtf8(data.subarray(i, i + n))) return n;
  }
  return 0;
}

/** A stored id (a Buffer) as text; null stays null. Valid UTF-8 costs one check. */
function storedName(data) {
  if (data === null || data === undefined) return null;
  if (isUtf8(data)) return data.toString('utf8');
  let text = '';
  let start = 0; // the start of the valid run not yet added
  for (let i = 0; i < data.length;) {
    const n = characterLength(data, i);
    if (n) {
      i += n;
      continue;
    }
    text += data.toString('utf8', start, i) + String.fromCharCode(ESCAPE_BASE + data[i]);
    i += 1;
    start = i;
  }
  return text + data.toString('utf8', start);
}

const isEscape = (unit) => unit >= 0xdc80 && unit <= 0xdcff;

/** The bytes of a string that is not valid Unicode only because it holds bytes that
 * storedName escaped; null for any other string (a lone surrogate of another kind, or escapes
 * that spell UTF-8: another id's text by another name, as Python refuses it). */
function escapedBytes(value) {
  if (typeof value !== 'string' || !value || value.isWellFormed()) return null;
  const parts = [];
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) { // a pair: one character
        i += 1;
        continue;
      }
    }
    if (!isEscape(unit)) return null;
    parts.push(Buffer.from(value.slice(start, i), 'utf8'), Buffer.of(unit - ESCAPE_BASE));
    start = i + 1;
  }
  parts.push(Buffer.from(value.slice(start), 'utf8'));
  const data = Buffer.concat(parts);
  return isUtf8(data) ? null : data;
}

/** An id as text to read (JSON, logs): each escaped byte written \xNN, as Python's
 * convert.shown writes it. */
function shown(id) {
  if (typeof id !== 'string' || id.isWellFormed()) return id;
  return id.replace(/[\udc80-\udcff]/gu, (c) => `\\x${(c.charCodeAt(0) - ESCAPE_BASE).toString(16).padStart(2, '0')}`);
}

module.exports = { storedName, escapedBytes, shown };
