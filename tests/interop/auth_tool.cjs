// The protocol v2 authentication checked with Node.js's own crypto (OpenSSL
// inside, but none of our code): derive an agent's MAC key, recompute a
// request's MAC from the documented inputs, verify an enrollment proof and
// the key's pin. docs/protocol.md, "Agent identity", is the only spec used.
//
//   node auth_tool.cjs derive SECRET_HEX AGENT_ID EPOCH         -> key hex
//   node auth_tool.cjs mac KEY_HEX METHOD PATH AGENT EPOCH SERVER COUNTER BODY -> mac b64url
//   node auth_tool.cjs proof JSON SERVER NONCE AGENT TOKEN|-    -> "ok" (exit 0) or exit 1
'use strict';
const crypto = require('crypto');
const [cmd, ...a] = process.argv.slice(2);
const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const unb64url = (s) => Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
const sha256hex = (data) => crypto.createHash('sha256').update(data).digest('hex');

if (cmd === 'derive') {
  const [secret, agent, epoch] = a;
  const info = Buffer.alloc(Buffer.byteLength(agent) + 9);
  info.write(agent);
  info.writeBigUInt64BE(BigInt(epoch), Buffer.byteLength(agent) + 1);
  const key = crypto.hkdfSync('sha256', Buffer.from(secret, 'hex'), 'authcert-v2 agent MAC key', info, 32);
  console.log(Buffer.from(key).toString('hex'));
} else if (cmd === 'mac') {
  const [key, method, path, agent, epoch, server, counter, body] = a;
  const text = ['authcert-v2', method, path, agent, epoch, server, counter, sha256hex(body)].join('\n');
  console.log(b64url(crypto.createHmac('sha256', Buffer.from(key, 'hex')).update(text).digest()));
} else if (cmd === 'proof') {
  const [json, server, nonce, agent, token] = a;
  const p = JSON.parse(json);
  const der = unb64url(p.key);
  const key = crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
  const pin = 'sha256//' + crypto.createHash('sha256').update(der).digest('base64');
  const th = token === '-' ? '0'.repeat(64) : sha256hex(token.split('.').slice(1).join('.'));
  const text = ['authcert-v2 enroll', agent, pin, server, nonce, th].join('\n');
  const alg = key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  const ok = pin === p.pin && text === p.text && crypto.verify(alg, Buffer.from(text), key, unb64url(p.proof));
  console.log(ok ? 'ok' : 'refused');
  process.exit(ok ? 0 : 1);
} else {
  console.error('usage: see the comment at the top');
  process.exit(2);
}
