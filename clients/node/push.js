'use strict';
/**
 * Push delivery: a Worker handler that POSTs each due job to a webhook, as the Python
 * dispatcher does (src/redisched/http/delivery.py). The request body is
 * {"topic", "id", "body", "attempt", "version", "token", "run_at"}, signed the Standard Webhooks
 * way (signing.js). 2xx acks the job (its result: the status and the answer's start); 202 leaves it reserved for the receiver to ack or release
 * with the token; 429/503 with Retry-After releases it after that delay; anything else, a
 * timeout or a connection error releases it with the topic's backoff (dead after max_attempts).
 */
const { toJsonText } = require('./body');
const { messageId, secretKey, signHeaders } = require('./signing');
const { checkWebhook } = require('./webhook');
const { KEEP, Retry } = require('./worker');
const { encodeResult } = require('./results');
const { shown } = require('./ids');

const USER_AGENT = 'redisched-node-webhook/1';
const MAX_REASON_CHARS = 300;
/** Characters of a receiver's answer kept as an acked job's result. */
const ANSWER_CHARS = 1024;

/** The JSON request body for a reserved job. */
function payload(job) {
  const fields = {
    topic: JSON.stringify(job.topic), id: JSON.stringify(shown(job.id)), body: toJsonText(job.body),
    attempt: job.attempts, version: job.version, token: JSON.stringify(job.token),
    run_at: JSON.stringify(new Date(job.runAtMs).toISOString()),
  };
  return `{${Object.entries(fields).map(([k, v]) => `"${k}":${v}`).join(',')}}`;
}

/** Seconds asked for by a Retry-After header (delta-seconds or an HTTP date), or null. */
function retryAfterMs(value, now = Date.now()) {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(0, when - now);
}

/**
 * A webhook URL's `user:password@` as HTTP Basic credentials, as the Python service sends them
 * (fetch refuses a URL that holds credentials): the URL without them, the Authorization header
 * (or null), and the URL as errors show it (the password as ***).
 */
function splitCredentials(url) {
  const target = new URL(url);
  if (!target.username && !target.password) return { endpoint: url, authorization: null, shown: url };
  const user = decodeURIComponent(target.username);
  const password = decodeURIComponent(target.password);
  const authorization = `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
  if (target.password) target.password = '***';
  const shown = target.href;
  target.username = '';
  target.password = '';
  return { endpoint: target.href, authorization, shown };
}

/**
 * A handler for Worker that delivers each job to `url`. The options are checked as the Python
 * service checks a topic's webhook, in its words (see webhook.js): an InvalidArgument names the
 * first refused (`url`, `secrets`, `secrets[i]` or `timeoutMs`).
 * @param options.url the webhook: an http(s) URL with a host, of at most 2048 characters
 * @param options.secrets signing secrets: at most two (during a rotation), each of 8 to 512
 *   characters and giving a key of at least 16 bytes
 * @param options.timeoutMs how long one request may take (default 10 s, at most 300 s)
 */
function webhookHandler(options) {
  const { url, secrets, timeoutMs } = checkWebhook(options);
  const keys = secrets.map(secretKey);
  const { endpoint, authorization, shown } = splitCredentials(url);
  return async (job, { signal } = {}) => {
    const data = Buffer.from(payload(job), 'utf8');
    const headers = {
      ...signHeaders(messageId(job), data, keys),
      'content-type': 'application/json', 'user-agent': USER_AGENT,
    };
    if (authorization) headers.authorization = authorization;
    const timeout = AbortSignal.timeout(Math.ceil(timeoutMs));
    let res;
    try {
      res = await fetch(endpoint, { method: 'POST', body: data, headers, redirect: 'manual',
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (err) {
      throw new Error(`webhook ${shown}: ${err.cause?.message || err.message}`);
    }
    const answer = await res.text().catch(() => '');
    const text = answer.slice(0, MAX_REASON_CHARS);
    if (res.status === 202) return KEEP;
    if (res.status >= 200 && res.status < 300) return deliveryResult(res.status, answer);
    const after = retryAfterMs(res.headers.get('retry-after'));
    if ((res.status === 429 || res.status === 503) && after !== null) {
      throw new Retry(after, `webhook answered HTTP ${res.status}`);
    }
    throw new Error(`webhook answered HTTP ${res.status}: ${text}`);
  };
}

/** What an acked delivery keeps as the job's result, byte for byte as push/delivery.py:
 * {"status": N, "body": the answer's first 1024 characters}. */
function deliveryResult(status, answer) {
  const start = Array.from(answer).slice(0, ANSWER_CHARS).join('');
  const text = String(encodeResult([start])).slice(1, -1); // the JSON string, non-ASCII escaped
  return Buffer.from(`{"status": ${status}, "body": ${text}}`);
}

module.exports = { webhookHandler, deliveryResult, payload, retryAfterMs, USER_AGENT };
