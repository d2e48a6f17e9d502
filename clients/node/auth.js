'use strict';
/**
 * Bearer tokens for the server, and the loopback rule of `serve`, as the Python service has them
 * (src/redisched/http/auth.py, src/redisched/config.py): every route but /healthz needs
 * `Authorization: Bearer <token>`; a token is 16 to 4096 printable characters; an address other
 * machines can reach is served only with tokens or when the user insists (--insecure).
 */
const crypto = require('node:crypto');
const net = require('node:net');

/** The shortest API token accepted (characters). */
const MIN_TOKEN_LENGTH = 16;
const MAX_TOKEN_LENGTH = 4096;
/** Paths served without a token. */
const OPEN_PATHS = new Set(['/healthz']);

const SHORT = `each token must be at least ${MIN_TOKEN_LENGTH} characters, so that it cannot be guessed `
  + "(try: python3 -c 'import secrets; print(secrets.token_urlsafe())')";
// Python's str.isprintable(): no control, format, surrogate, private-use, unassigned or
// separator character but the space.
const UNPRINTABLE = /[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;

/** Why `token` is refused as an API token, in the Python service's words, or null. */
function tokenProblem(token) {
  if (typeof token !== 'string') return 'each token must be a string';
  const length = [...token].length;
  if (!length || length > MAX_TOKEN_LENGTH || !token.isWellFormed() || UNPRINTABLE.test(token)) {
    return `each token must be 1 to ${MAX_TOKEN_LENGTH} printable characters`;
  }
  if (length < MIN_TOKEN_LENGTH) return SHORT;
  return null;
}

/** The first refused token of `tokens` as [index, problem], or null when all are good. */
function tokensProblem(tokens) {
  for (const [i, token] of tokens.entries()) {
    const problem = tokenProblem(token);
    if (problem) return [i, problem];
  }
  return null;
}

const digest = (data) => crypto.createHash('sha256').update(data).digest();

/**
 * A function telling whether an Authorization header value carries one of `tokens` (non-empty,
 * each checked by tokenProblem first). Every token is compared, in constant time, whichever
 * matches: timing reveals neither a token nor which one was close. The digests make the
 * lengths equal, as timingSafeEqual needs, without revealing a token's length.
 */
function bearerCheck(tokens) {
  const digests = tokens.map((token) => digest(Buffer.from(token, 'utf8')));
  return (header) => {
    let presented = '';
    if (typeof header === 'string' && header.slice(0, 7).toLowerCase() === 'bearer ') {
      presented = header.slice(7).trim();
    }
    // Node reads header bytes as Latin-1: back to the bytes sent, which a UTF-8 token spells.
    const sent = digest(Buffer.from(presented, 'latin1'));
    let matched = false;
    for (const d of digests) matched = crypto.timingSafeEqual(sent, d) || matched;
    return matched && presented !== '';
  };
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True when `host` names this machine only (127.0.0.0/8, ::1, `localhost`). */
function isLoopback(host) {
  if (host === 'localhost') return true;
  const family = net.isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** Why serving on `host` is refused (reachable from other machines without tokens, and not
 * `insecure`), in the Python service's words, or null. */
function exposureProblem(host, tokens, insecure) {
  if (isLoopback(host) || tokens.length || insecure) return null;
  return `${host} is reachable from other machines: set API tokens (--token or REDISCHED_API_TOKENS), `
    + 'or pass --insecure to serve without authentication';
}

module.exports = { MIN_TOKEN_LENGTH, OPEN_PATHS, tokenProblem, tokensProblem, bearerCheck, isLoopback, exposureProblem };
