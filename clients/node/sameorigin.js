'use strict';
/**
 * The same-origin guard of the Python service (src/redisched/http/sameorigin.py): without API
 * tokens the server trusts whoever can reach it, so a web page must not use a visitor's browser
 * to reach it.
 *
 * - DNS rebinding: a page re-points its own name at 127.0.0.1 and reads the server as
 *   same-origin; its requests carry `Host: attacker.example`. A `Host` that is no IP address, not
 *   `localhost`, and not one of the allowed hosts (the listen host, --allowed-host) is 400
 *   `bad_host`.
 * - Cross-site writes: a form or `fetch` POST from another origin needs no CORS preflight. A
 *   state-changing request (not GET, HEAD or OPTIONS) whose `Origin` is not the server's own
 *   (same host and port as its `Host`), or whose `Sec-Fetch-Site` is `cross-site`, is 403
 *   `cross_site`.
 *
 * Requests without those headers (curl, the SDKs, other servers) are not affected: only browsers
 * send them, and browsers always do on the requests that matter here.
 */
const net = require('node:net');
const { hostAndPort, pyRepr } = require('./python');

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const LOOPBACK_NAMES = ['localhost', 'localhost.localdomain'];

/** The name part of a `Host` value (no port, no brackets, lower case, no final dot). */
function hostName(host) {
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) return name.slice(1).split(']', 1)[0];
  if (name.split(':').length === 2) name = name.split(':', 1)[0];
  return name.replace(/\.+$/, '');
}

/** The port of a netloc's port text as Python's urlsplit reads it: null when absent, -1 when bad. */
function portOf(text) {
  if (text === '') return null;
  const port = /^[0-9]+$/.test(text) ? Number(text) : -1;
  return port <= 65535 ? port : -1;
}

/** [name, port] of a Host value or an Origin's netloc, as Python's urlsplit splits them. */
function netloc(value, defaultPort) {
  const [name, port] = hostAndPort(value.trim().toLowerCase());
  return [name.replace(/\.+$/, ''), portOf(port) || defaultPort];
}

/** True when `origin` names the host and port (`host`, else the socket's) the request was sent
 * to. A port left out is the default of the Origin's scheme on both sides: behind a TLS proxy the
 * browser's `https://name` and `Host: name` still match. */
function sameOrigin(origin, host, socket) {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)/i.exec(origin.trim());
  if (!m || !['http', 'https'].includes(m[1].toLowerCase())) return false; // "null", file: pages...
  const defaultPort = m[1].toLowerCase() === 'https' ? 443 : 80;
  const [name, port] = netloc(m[2], defaultPort);
  if (!name) return false;
  if (host === undefined) {
    if (!socket || !socket.localAddress) return false;
    const address = socket.localAddress;
    host = address.includes(':') ? `[${address}]:${socket.localPort}` : `${address}:${socket.localPort}`;
  }
  const [hostname, hostPort] = netloc(host, defaultPort);
  return name === hostname && port === hostPort;
}

/**
 * A function telling why a request is refused under the two rules: null to serve it, else
 * {status, code, message, field}.
 *
 * @param {string[]} allowedHosts host names answered besides IP addresses and `localhost`; `*`
 *   answers any (behind a proxy that checks `Host` itself).
 */
function sameOriginCheck(allowedHosts = []) {
  const names = new Set([...allowedHosts.map(hostName), ...LOOPBACK_NAMES]);
  const anyHost = names.has('*');
  const hostAllowed = (host) => {
    const name = hostName(host);
    return anyHost || names.has(name) || net.isIP(name) !== 0;
  };
  const crossSite = (field, why) => ({ status: 403, code: 'cross_site',
    message: `${why}: state-changing requests are refused`, field });
  return (req) => {
    const { host, origin } = req.headers;
    const fetchSite = (req.headers['sec-fetch-site'] ?? '').trim().toLowerCase();
    if (host !== undefined && !hostAllowed(host)) {
      return { status: 400, code: 'bad_host', field: 'Host',
        message: `this service does not answer for host ${pyRepr(hostName(host))} (add it with --allowed-host)` };
    }
    if (SAFE_METHODS.has(req.method)) return null;
    if (fetchSite === 'cross-site') return crossSite('Sec-Fetch-Site', 'the request comes from another site');
    if (origin !== undefined && !sameOrigin(origin, host, req.socket)) {
      return crossSite('Origin', `origin ${pyRepr(origin)} is not this service's own`);
    }
    return null;
  };
}

module.exports = { sameOriginCheck };
