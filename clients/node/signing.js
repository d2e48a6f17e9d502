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

/** The HMAC key of a secret. */
function secretKey(secret) {
  if (!secret.startsWith(SECRET_PREFIX)) return Buffer.from(secret, 'utf8');
  const text = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    throw new TypeError('secret: a whsec_ secret must be followed by base64');
  }
  return Buffer.from(text, 'base64');
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

module.exports = { secretKey, signature, signHeaders, messageId };
