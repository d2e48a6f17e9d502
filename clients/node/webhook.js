'use strict';
/**
 * A webhook's settings checked as the Python service checks a topic's webhook
 * (src/redisched/topic_config.py: validate_webhook and check_webhook_url), in its words:
 * conformance/webhooks.json holds the cases the three must agree on. The URL is split as
 * Python's urllib.parse.urlsplit splits it, so that both refuse the same URLs.
 */
const net = require('node:net');
const { InvalidArgument } = require('./schedules');
const { secretProblem } = require('./signing');
const { hostAndPort, pyRepr } = require('./python');

const MAX_URL_LENGTH = 2048;
/** Secrets a webhook may hold: two during a rotation. */
const MAX_SECRETS = 2;
const MIN_SECRET_CHARS = 8;
const MAX_SECRET_CHARS = 512;
const MAX_TIMEOUT_MS = 300_000;
const DEFAULT_TIMEOUT_MS = 10_000;

/** What Python's str.isspace() takes, and the other control characters. */
const SPACE_OR_CONTROL = /[\x00-\x20\x7f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const IPV_FUTURE = /^v[a-fA-F0-9]+\..+$/s;
const HOST_PROBLEM = 'must be an http:// or https:// URL with a host';
const PORT_PROBLEM = 'must have a port from 1 to 65535 (or none)';

/** Why Python's ipaddress module refuses a host written in brackets, or null. */
function bracketedHostProblem(host) {
  if (host.startsWith('v')) return IPV_FUTURE.test(host) ? null : 'IPvFuture address is invalid';
  if (net.isIPv4(host)) return 'An IPv4 address cannot be in brackets';
  return net.isIPv6(host) ? null : `${pyRepr(host)} does not appear to be an IPv4 or IPv6 address`;
}

/** Why urlsplit refuses a netloc (its ValueError's words), or null. */
function netlocProblem(netloc) {
  const open = netloc.indexOf('[');
  if ((open >= 0) !== netloc.includes(']')) return 'Invalid IPv6 URL';
  if (open >= 0) {
    const inside = netloc.slice(open + 1);
    const problem = bracketedHostProblem(inside.split(']', 1)[0]);
    if (problem) return problem;
  }
  // A character such as U+FF0F (a full-width slash) that NFKC turns into a delimiter.
  const rest = netloc.replace(/[@:#?]/g, '');
  const normal = rest.normalize('NFKC');
  if (normal !== rest && /[/?#@:]/.test(normal)) {
    return `netloc '${netloc}' contains invalid characters under NFKC normalization`;
  }
  return null;
}

/** The scheme (lowercased), the host and the port of `url` as urlsplit finds them. */
function urlParts(url) {
  const scheme = SCHEME.exec(url);
  const rest = scheme ? url.slice(scheme[0].length) : url;
  const netloc = rest.startsWith('//') ? rest.slice(2).split(/[/?#]/, 1)[0] : '';
  const [host, port] = hostAndPort(netloc);
  return { scheme: scheme ? scheme[1].toLowerCase() : '', netloc, host, port };
}

/**
 * Why `url` is refused as a webhook URL, or null: Python's rules and words. It must be an
 * http(s) URL with a host, of at most 2048 characters, without spaces or control characters,
 * with a port from 1 to 65535 if any.
 */
function webhookUrlProblem(url) {
  if (typeof url !== 'string' || [...url].length > MAX_URL_LENGTH) {
    return `must be a URL of at most ${MAX_URL_LENGTH} chars`;
  }
  if (!url.isWellFormed()) return 'must be valid Unicode (no lone surrogates)';
  if (SPACE_OR_CONTROL.test(url)) return 'must not contain spaces or control characters';
  const { scheme, netloc, host, port } = urlParts(url);
  const invalid = netlocProblem(netloc);
  if (invalid) return `is not a valid URL: ${invalid}`;
  if ((scheme !== 'http' && scheme !== 'https') || !host) return HOST_PROBLEM;
  if (port && (!/^[0-9]+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) return PORT_PROBLEM;
  try {
    new URL(url); // eslint-disable-line no-new -- fetch must reach what Python takes
  } catch (err) {
    return `is not a valid URL: ${err.message}`;
  }
  return null;
}

/** The field and words refusing `secrets` (a webhook's signing secrets), or null. */
function secretsProblem(secrets) {
  if (!Array.isArray(secrets)) return ['secrets', 'must be a list of strings'];
  const fits = (s) => typeof s === 'string' && [...s].length >= MIN_SECRET_CHARS && [...s].length <= MAX_SECRET_CHARS;
  if (secrets.length > MAX_SECRETS || !secrets.every(fits)) {
    return ['secrets', `must hold at most ${MAX_SECRETS} secrets of ${MIN_SECRET_CHARS} to ${MAX_SECRET_CHARS} characters`];
  }
  for (const [index, secret] of secrets.entries()) {
    const problem = secretProblem(secret);
    if (problem) return [`secrets[${index}]`, problem];
  }
  return null;
}

/** Why `timeoutMs` is refused as a delivery's timeout, or null (Python's 0 to 300 seconds). */
function timeoutProblem(timeoutMs) {
  const fits = typeof timeoutMs === 'number' && timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS;
  return fits ? null : `must be more than 0 and at most ${MAX_TIMEOUT_MS} ms`;
}

/**
 * `{url, secrets, timeoutMs}` with its defaults, checked as the Python service checks a webhook,
 * in the same order (the URL, the secrets, the timeout).
 * @throws InvalidArgument naming `url`, `secrets`, `secrets[i]` or `timeoutMs` (or `options`)
 */
function checkWebhook(options) {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgument('options', 'must be an object with url, secrets and timeoutMs');
  }
  const { url, secrets = [], timeoutMs = DEFAULT_TIMEOUT_MS } = options;
  const urlProblem = webhookUrlProblem(url);
  if (urlProblem) throw new InvalidArgument('url', urlProblem);
  const refused = secretsProblem(secrets);
  if (refused) throw new InvalidArgument(...refused);
  const timeout = timeoutProblem(timeoutMs);
  if (timeout) throw new InvalidArgument('timeoutMs', timeout);
  return { url, secrets, timeoutMs };
}

module.exports = {
  MAX_URL_LENGTH, MAX_SECRETS, MAX_TIMEOUT_MS, checkWebhook, webhookUrlProblem, secretsProblem, timeoutProblem,
};
