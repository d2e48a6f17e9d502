'use strict';
/**
 * How job bodies (bytes) travel as JSON, as src/redisched/json_body.py does it: a JSON value is
 * stored as its compact encoding; stored bytes that are a JSON text read back as that value;
 * other bytes read back as {"$base64": "..."}, and writers accept that marker.
 */
const { printable, pyRepr } = require('./python');

const MARKER = '$base64';
/** The deepest JSON nesting read as JSON (json_body.MAX_DEPTH: writers refuse deeper). */
const MAX_DEPTH = 512;
// json_keys.PATH_SEARCH_BYTES: a larger request's fault is named by its free field, not its path
const PATH_SEARCH_BYTES = 256 * 1024;
// msgspec reads an integer of more characters (sign included) as out of range
const MAX_INT_CHARS = 4300;
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

/**
 * True when the JSON text `data` (bytes) nests arrays/objects deeper than `limit`, counted as
 * json_body.too_deep counts: brackets outside strings, none after an unterminated string.
 */
function tooDeep(data, limit = MAX_DEPTH) {
  let depth = 0;
  for (let i = 0; i < data.length; i++) {
    const c = data[i];
    if (c === 0x22) { // a string: to its closing quote, each escape's character skipped
      for (i++; i < data.length && data[i] !== 0x22; i++) if (data[i] === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** A string as Python's json.dumps writes it (ASCII only, lower-case \u escapes). */
function asciiJson(text) {
  const short = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  return `"${text.replace(/["\\]|[^ -~]/g, (c) => short[c] || `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/** A value's field path as the Python service names it (json_keys.path): `contents.a[0]`, or
 * `contents["a.b"]` for a key that would read as more than one step. */
function fieldPath(steps) {
  const step = (s) => (typeof s === 'number' ? `[${s}]`
    : /^[^.[\]"\\]+$/.test(s) && printable(s) ? `.${s}` : `[${asciiJson(s)}]`);
  return steps.map(step).join('').replace(/^\./, '') || null;
}

/** A value's path as msgspec names it in a decoding error: the request's field, then `[i]` for
 * an array item and `[...]` for an object member. */
const decoderPath = (steps) => steps[0] + steps.slice(1).map((s) => (typeof s === 'number' ? `[${s}]` : '[...]')).join('');

const fault = (field, message) => ({ field, message });

/** The index after the JSON string starting at text[i] (its opening quote). */
function stringEnd(text, i) {
  let end = i + 1;
  while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
  return end + 1;
}

/** The index after the JSON value starting at text[i] (its first character). */
function valueEnd(text, i) {
  let depth = 0;
  do {
    const c = text[i];
    if (c === '"') {
      i = stringEnd(text, i);
      continue;
    }
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (depth === 0) { // a number, true, false or null: to the next delimiter
      while (i < text.length && !',]} \t\n\r'.includes(text[i])) i++;
      return i;
    }
    i++;
  } while (depth > 0);
  return i;
}

const SPACE = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;

/** The index of the first character from text[i] on that is not JSON white space. */
function skipSpace(text, i) {
  SPACE.lastIndex = i;
  SPACE.exec(text);
  return SPACE.lastIndex;
}

/**
 * A float as msgspec writes it, and so the Python service stores it: the shortest digits that
 * read back as `x`, in positional notation from 1e-5 to below 1e16 (`100000.0`, `0.000025`), else
 * as `1.5e22`, `1e-7` (no `+`, no `.0`); `-0.0` keeps its sign.
 */
function pyFloat(x) {
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const text = Math.abs(x).toExponential(); // the shortest digits, as ryu's: 1.5e+22, 1e-7
  const at = text.indexOf('e');
  const digits = text[0] + text.slice(2, at);
  const e = Number(text.slice(at + 1));
  if (e < -5 || e >= 16) return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${e}`;
  if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`;
  return `${sign}${digits.slice(0, e + 1).padEnd(e + 1, '0')}.${digits.slice(e + 1) || '0'}`;
}

// a JSON string (matched to be skipped, or re-encoded), then what exactJson drops or rewrites:
// white space; a number with a fraction or an exponent, and -0 (an integer is kept as it is)
const STRING = '"[^"\\\\]*(?:\\\\.[^"\\\\]*)*"';
const SPACES = new RegExp(`(${STRING})|[ \\t\\n\\r]+`, 'g');
const TOKEN = new RegExp(`${STRING}|-?(?:0|[1-9]\\d*)(?:\\.\\d+(?:[eE][+-]?\\d+)?|[eE][+-]?\\d+)|-0(?![\\d.eE])`, 'g');

/**
 * The JSON text of a value as the Python service stores it: compact, members in the order sent,
 * strings as JSON.stringify writes them (as msgspec does), an integer's digits exactly (`-0` as
 * `0`), a number with a fraction or an exponent as the float msgspec reads and writes (pyFloat).
 * JSON.parse then JSON.stringify rounded an integer past 2^53 (12345678901234567890123 as
 * 1.2345678901234568e+22) and put a key like "1" first. `text` must be JSON that JSON.parse
 * accepts and jsonFaults finds nothing in.
 */
function exactJson(text) {
  return text.replace(SPACES, '$1').replace(TOKEN, (token) => {
    if (token[0] === '"') return token.includes('\\') ? JSON.stringify(JSON.parse(token)) : token;
    return token === '-0' ? '0' : pyFloat(Number(token));
  });
}

/** The JSON text of each member of the JSON object `text` (a request), by key: as sent, for
 * exactJson. `text` as exactJson takes it. */
function memberTexts(text) {
  const members = new Map();
  let i = skipSpace(text, 0) + 1; // after the {
  for (;;) {
    i = skipSpace(text, i);
    if (text[i] === '}') return members;
    if (text[i] === ',') i = skipSpace(text, i + 1);
    const keyEnd = stringEnd(text, i);
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1); // after the :
    const end = valueEnd(text, start);
    members.set(JSON.parse(text.slice(i, keyEnd)), text.slice(start, end));
    i = end;
  }
}

/**
 * What the Python service refuses in a request object that JSON.parse accepts (its
 * http/reading.py): `fault`, the first number out of range or string with a lone surrogate
 * escape in document order (msgspec refuses them while decoding: JSON.parse would read
 * Infinity, or a string with no UTF-8), and `repeated`, a key given twice in an object
 * (JSON.parse keeps the last: json_keys.repeated_key), each as {field, message} or null.
 *
 * `text` is the request, a JSON object; `free` the field holding free JSON (`contents`), named
 * instead of a path in a request over PATH_SEARCH_BYTES; `known` its field names: the pass
 * stops at any other (refused as such, as Python refuses it there). A key given twice in the
 * request itself is named as itself, else the first object (in document order) that repeats
 * one, by its path.
 */
function jsonFaults(text, free = null, known = null) {
  const large = Buffer.byteLength(text) > PATH_SEARCH_BYTES;
  const stack = []; // the open arrays and objects: {keys (a Set, for an object), step, ...}
  const steps = () => stack.map((frame) => frame.step);
  let objects = 0;
  let first = null; // the first object (in document order) that repeats a key
  let closed = null; // the first such object to end (json_keys names its key in a large request)
  let key = false; // the next string is an object's key
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      const raw = text.slice(i, end);
      i = end;
      const value = raw.includes('\\') ? JSON.parse(raw) : raw.slice(1, -1);
      const frame = stack[stack.length - 1];
      if (key) frame.step = value; // a key's path is its value's
      if (!value.isWellFormed()) {
        return { fault: fault(large ? free : fieldPath(steps()), 'must be valid Unicode (no lone surrogates)'), repeated: null };
      }
      if (!key) continue;
      key = false;
      if (stack.length === 1 && known && !known.includes(value)) break; // refused as unknown
      if (!frame.keys.has(value)) {
        frame.keys.add(value);
      } else if (frame.repeat === null) {
        Object.assign(frame, { repeat: value, path: fieldPath(steps()) });
        if (first === null || frame.order < first.order) first = frame;
      }
    } else if (c === '{' || c === '[') {
      stack.push(c === '{' ? { keys: new Set(), step: null, order: objects++, repeat: null } : { step: 0 });
      key = c === '{';
      i++;
    } else if (c === '}' || c === ']') {
      const frame = stack.pop();
      if (frame.repeat && closed === null) closed = frame;
      key = false;
      i++;
    } else if (c === ',') {
      const frame = stack[stack.length - 1];
      if (frame.keys) key = true;
      else frame.step++;
      i++;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const [raw, fraction, exponent] = NUMBER.exec(text);
      i += raw.length;
      const outOfRange = fraction !== undefined || exponent !== undefined
        ? !Number.isFinite(Number(raw)) && 'Number out of range'
        : raw.length > MAX_INT_CHARS && 'Integer value out of range';
      if (outOfRange) return { fault: fault(decoderPath(steps()), outOfRange), repeated: null };
    } else {
      i++; // ':', white space, or a letter of true, false, null
    }
  }
  if (i < text.length || first === null) return { fault: null, repeated: null };
  const [repeat, field] = first.order === 0 ? [first.repeat, first.repeat] // the request's own field
    : large ? [closed.repeat, free] : [first.repeat, first.path];
  return { fault: null, repeated: fault(field, `the JSON object has the key ${pyRepr(repeat)} twice`) };
}

module.exports = { MARKER, MAX_DEPTH, isMarker, toStored, toJsonText, tooDeep, jsonFaults, pyFloat, exactJson, memberTexts };
