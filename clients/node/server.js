'use strict';
/**
 * A small HTTP server with the original project's routes, over a Scheduler:
 *
 *   POST /schedule/{topic}  {"id", "contents", "delay"}  create or replace job id, due after
 *                           delay seconds; 201 created, 200 replaced, 202 pending (a running
 *                           attempt finishes first), with {"topic", "id", "version", "status"}
 *   POST /cancel/{topic}    {"id"}  delete it; 200 {"id", "cancelled": true}, or 404
 *   GET  /healthz           200 {"status": "ok", "redis": "ok"}, 503 when Redis does not answer
 *
 * `contents` follows the body convention of the Python service (body.js). Errors are JSON
 * {"error": {"code", "message", "field"}} and change nothing stored. With tokens, every route but
 * /healthz answers 401 (field "Authorization", `WWW-Authenticate: Bearer realm="redisched"`)
 * unless the request sends `Authorization: Bearer <one of the tokens>` (auth.js). Before that, as
 * the Python service does (sameorigin.js): a `Host` that is not an IP address, `localhost` or an
 * allowed host is 400 `bad_host` (DNS rebinding), and a POST with a foreign `Origin` or with
 * `Sec-Fetch-Site: cross-site` is 403 `cross_site`.
 */
const http = require('node:http');
const { MAX_DEPTH, exactJson, isMarker, jsonFaults, memberTexts, toStored, tooDeep } = require('./body');
const { InvalidArgument } = require('./schedules');
const { OPEN_PATHS, bearerCheck, tokensProblem } = require('./auth');
const { sameOriginCheck } = require('./sameorigin');

// As the Python service's max_request_size: larger than the largest body (the scheduler's
// maxBodySize, 1 MiB by default), which {"$base64": ...} makes a third longer again.
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
const MAX_ID_BYTES = 1024;
const MAX_DELAY_S = 100 * 365 * 86_400;
const STATUS = { created: 201, replaced: 200, pending: 202 };

class ApiError extends Error {
  constructor(status, code, message, field = null, headers = {}) {
    super(message);
    Object.assign(this, { status, code, field, headers });
  }
}

/**
 * A function throwing while `redis` is down, from a lost or refused connection until it is ready
 * again: meanwhile ioredis would queue a command and retry it for seconds (9.6 s for a put, 32 s
 * for a PING), where the Python and Go servers answer 503 at once. A first connection still
 * being made is waited for, as ioredis does.
 */
function outageCheck(redis) {
  let down = false;
  redis.on('close', () => { down = true; });
  redis.on('ready', () => { down = false; });
  return () => {
    if (down || redis.status === 'end') throw new Error(`Redis is not connected (${redis.status})`);
  };
}

const invalid = (field, message) => new ApiError(400, 'invalid', `${field} ${message}`, field);

function send(res, status, value, headers = {}) {
  const data = JSON.stringify(value);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/**
 * The request object; as an ApiError or null, a key it gives twice: refused once its fields are
 * checked, as the Python service refuses it (after decoding); and its text. `free` is the field
 * holding free JSON (named when the request is too deep), `known` the fields of the route.
 */
async function readJson(req, free, known) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES) throw new ApiError(413, 'payload_too_large', `the request body is over ${MAX_REQUEST_BYTES} bytes`);
    chunks.push(chunk);
  }
  const data = Buffer.concat(chunks);
  if (tooDeep(data, MAX_DEPTH + 1)) { // the request object is one level around the body
    throw new ApiError(400, 'too_deep', `the JSON is nested deeper than ${MAX_DEPTH} levels`, free);
  }
  let text;
  let value;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'malformed_json', `the request body is not valid JSON: ${err.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError(400, 'invalid', 'the request body must be a JSON object');
  }
  // what JSON.parse reads otherwise than Python: 1e400 as Infinity, "\ud800" as no UTF-8, a key twice
  const { fault, repeated } = jsonFaults(text, free, known);
  if (fault) throw new ApiError(400, 'invalid', fault.message, fault.field);
  return [value, repeated && new ApiError(400, 'invalid', repeated.message, repeated.field), text];
}

function fields(value, allowed, required) {
  for (const key of Object.keys(value)) if (!allowed.includes(key)) throw invalid(key, 'is not a known field');
  for (const key of required) if (!(key in value)) throw invalid(key, 'is required');
  const { id } = value;
  if (typeof id !== 'string' || !id || Buffer.byteLength(id) > MAX_ID_BYTES) {
    throw invalid('id', `must be a string of 1 to ${MAX_ID_BYTES} bytes`);
  }
  if (!id.isWellFormed()) throw invalid('id', 'must be valid Unicode (no lone surrogates)');
  return value;
}

function topicOf(scheduler, raw) {
  let topic;
  try {
    topic = decodeURIComponent(raw);
    scheduler.keys(scheduler.scripts.get('get'), topic);
  } catch {
    throw invalid('topic', 'must be 1 to 200 characters without braces or control characters');
  }
  return topic;
}

async function schedule(scheduler, topic, req, connected) {
  const known = ['id', 'contents', 'delay'];
  const [value, repeated, text] = await readJson(req, 'contents', known);
  const spec = fields(value, known, ['id', 'contents']);
  const delay = spec.delay ?? 0;
  if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0 || delay > MAX_DELAY_S) {
    throw invalid('delay', `must be a number of seconds from 0 to ${MAX_DELAY_S}`);
  }
  if (repeated) throw repeated;
  let data;
  try {
    // from the text sent, as Python stores it: JSON.stringify(spec.contents) rounded integers past 2^53
    data = isMarker(spec.contents) ? toStored(spec.contents, 'contents')
      : Buffer.from(exactJson(memberTexts(text).get('contents')), 'utf8');
  } catch (err) {
    throw invalid(err.field || 'contents', err.message);
  }
  if (data.length > scheduler.maxBodySize) {
    throw new ApiError(413, 'payload_too_large', `the body is ${data.length} bytes; the limit is ${scheduler.maxBodySize}`, 'contents');
  }
  connected();
  const { status, version } = await scheduler.put(topic, spec.id, data,
    { delayMs: Math.round(delay * 1000), replace: true });
  return [STATUS[status], { topic, id: spec.id, version, status }];
}

async function cancel(scheduler, topic, req, connected) {
  const [value, repeated] = await readJson(req, null, ['id']);
  const spec = fields(value, ['id'], ['id']);
  if (repeated) throw repeated;
  connected();
  if (!(await scheduler.delete(topic, spec.id))) {
    throw new ApiError(404, 'not_found', `no job ${JSON.stringify(spec.id)} in topic ${JSON.stringify(topic)}`, 'id');
  }
  return [200, { id: spec.id, cancelled: true }];
}

const ROUTES = { schedule, cancel };

const UNAUTHORIZED = new ApiError(401, 'unauthorized', 'send Authorization: Bearer <token>', 'Authorization',
  { 'www-authenticate': 'Bearer realm="redisched"' });

/**
 * An http.Server answering the routes above through `scheduler`.
 *
 * @param {Scheduler} scheduler the jobs' Redis.
 * @param {object} [options]
 * @param {string[]} [options.tokens] API tokens, each 16 to 4096 printable characters: when any
 *   is given, every route but /healthz needs `Authorization: Bearer <one of them>` (401 without).
 *   None (the default) serves everyone: listen on a loopback address only.
 * @param {string[]} [options.allowedHosts] host names answered besides IP addresses and
 *   `localhost` (give the listen host if it is a name); `*` answers any `Host`.
 * @throws {InvalidArgument} `tokens` or `tokens[i]`, when a token is refused (too short...);
 *   `allowedHosts` when it is not an array of strings.
 */
function createServer(scheduler, { tokens = [], allowedHosts = [] } = {}) {
  if (!Array.isArray(tokens)) throw new InvalidArgument('tokens', 'must be an array of strings');
  if (!Array.isArray(allowedHosts) || allowedHosts.some((h) => typeof h !== 'string')) {
    throw new InvalidArgument('allowedHosts', 'must be an array of strings');
  }
  const refusal = sameOriginCheck(allowedHosts); // null, or why a request is refused
  const connected = outageCheck(scheduler.redis);
  const refused = tokensProblem(tokens);
  if (refused) throw new InvalidArgument(`tokens[${refused[0]}]`, refused[1]);
  const allows = tokens.length ? bearerCheck(tokens) : () => true;
  return http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://localhost');
      // before routing and before the body is read: a refused request learns nothing, stores nothing
      const foreign = refusal(req);
      if (foreign) throw new ApiError(foreign.status, foreign.code, foreign.message, foreign.field);
      if (!OPEN_PATHS.has(url.pathname) && !allows(req.headers.authorization)) throw UNAUTHORIZED;
      const m = /^\/(schedule|cancel)\/([^/]+)$/.exec(url.pathname);
      if (m && req.method === 'POST') {
        const [status, body] = await ROUTES[m[1]](scheduler, topicOf(scheduler, m[2]), req, connected);
        send(res, status, body);
      } else if (url.pathname === '/healthz' && req.method === 'GET') {
        try {
          connected();
          await scheduler.redis.ping();
          send(res, 200, { status: 'ok', redis: 'ok' });
        } catch (err) {
          send(res, 503, { status: 'unavailable', redis: err.message });
        }
      } else if (m || url.pathname === '/healthz') {
        throw new ApiError(405, 'method_not_allowed', `${req.method} is not allowed here`);
      } else {
        throw new ApiError(404, 'not_found', `no route ${url.pathname}`);
      }
    } catch (err) {
      if (err instanceof InvalidArgument) err = invalid(err.field, err.message.slice(err.field.length + 2));
      if (err instanceof ApiError) {
        send(res, err.status, { error: { code: err.code, message: err.message, field: err.field } }, err.headers);
      } else {
        send(res, 503, { error: { code: 'backend_unavailable', message: String(err.message), field: null } });
      }
    }
  });
}

module.exports = { createServer, ApiError };
