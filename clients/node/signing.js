'use strict';
/**
 * Webhook signatures in the Standard Webhooks format, as src/redisched/http/signing.py makes them.
 *
 * Headers: `webhook-id`, `webhook-timestamp` (epoch seconds) and `webhook-signature`:
 * `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one per secret, space-separated. A
 * secret is `whsec_<base64>` (the key is the decoded bytes) or any other string (its UTF-8 bytes).
 */
const crypto = require('node:crypto');
const { escapedBytes } = require('./ids');

const SECRET_PREFIX = 'whsec_';
/** The shortest HMAC key a signing secret may give, as src/redisched/topic_config.py (a 1-byte
 * key is guessed at once). */
const MIN_SECRET_KEY_BYTES = 16;

/** The HMAC key of a secret. */
function secretKey(secret) {
  if (!secret.startsWith(SECRET_PREFIX)) return Buffer.from(secret, 'utf8');
  const text = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    throw new TypeError('secret: a whsec_ secret must be followed by base64');
  }
  return Buffer.from(text, 'base64');
}

/**
 * Why `secret` is refused as a signing secret, or null: the rule and words of Python's
 * topic_config.secret_problem. It must sign (a `whsec_` secret followed by base64) with a key of at
 * least MIN_SECRET_KEY_BYTES bytes.
 */
function secretProblem(secret) {
  if (typeof secret !== 'string') return `must be a string, not ${secret === null ? 'null' : typeof secret}`;
  if (!secret.isWellFormed()) return 'must be valid Unicode (no lone surrogates)';
  let key;
  try {
    key = secretKey(secret);
  } catch {
    key = Buffer.alloc(0);
  }
  if (!key.length) return 'must be whsec_ followed by base64 (Standard Webhooks), or not start with whsec_';
  if (key.length < MIN_SECRET_KEY_BYTES) {
    const n = MIN_SECRET_KEY_BYTES;
    return `must give a key of at least ${n} bytes (whsec_ and the base64 of ${n} bytes or more, or ${n}+ UTF-8 bytes)`;
  }
  return null;
}

/** One `v1,<base64>` signature of a message under one key. */
function signature(key, msgId, timestamp, body) {
  const hmac = crypto.createHmac('sha256', key);
  hmac.update(`${msgId}.${timestamp}.`);
  hmac.update(body);
  return `v1,${hmac.digest('base64')}`;
}

/** The Standard Webhooks headers of a request (no webhook-signature without keys). */
function signHeaders(msgId, body, keys, timestamp = Math.floor(Date.now() / 1000)) {
  const headers = { 'webhook-id': msgId, 'webhook-timestamp': String(timestamp) };
  if (keys.length) headers['webhook-signature'] = keys.map((k) => signature(k, msgId, timestamp, body)).join(' ');
  return headers;
}

/** The webhook-id: the same for every attempt of one job version. */
function messageId(job) {
  // an id stored as bytes that are not UTF-8 (ids.js) is hashed as those bytes, as Python does
  const id = escapedBytes(job.id) || job.id;
  const digest = crypto.createHash('sha256').update(`${job.topic}\0`).update(id).update(`\0${job.version}`)
    .digest('hex');
  return `msg_${digest.slice(0, 32)}`;
}

module.exports = { MIN_SECRET_KEY_BYTES, secretKey, secretProblem, signature, signHeaders, messageId };
