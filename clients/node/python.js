'use strict';
/** How Python writes and splits text, where the glue must answer in the Python service's words. */

const printable = (text) => /^(?:[^\p{C}\p{Z}]| )*$/u.test(text); // Python's str.isprintable()

/** A string as Python's repr() writes it, as the Python service's messages quote a header, a
 * JSON key or a URL's host. */
function pyRepr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = '';
  for (const c of text) {
    const code = c.codePointAt(0);
    if (c === quote || c === '\\') out += `\\${c}`;
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (printable(c)) out += c;
    else if (code < 0x100) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else if (code < 0x10000) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return quote + out + quote;
}

/** [host, port text] of a netloc as urlsplit finds them: after any userinfo, the host in
 * brackets or up to the first colon. */
function hostAndPort(netloc) {
  const hostinfo = netloc.slice(netloc.lastIndexOf('@') + 1);
  const open = hostinfo.indexOf('[');
  if (open >= 0) {
    const inside = hostinfo.slice(open + 1);
    const close = inside.indexOf(']');
    const after = close < 0 ? '' : inside.slice(close + 1);
    return [close < 0 ? inside : inside.slice(0, close), after.includes(':') ? after.slice(after.indexOf(':') + 1) : ''];
  }
  const colon = hostinfo.indexOf(':');
  return colon < 0 ? [hostinfo, ''] : [hostinfo.slice(0, colon), hostinfo.slice(colon + 1)];
}

module.exports = { printable, pyRepr, hostAndPort };
