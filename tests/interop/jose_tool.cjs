// The independent side of tests/interop/jose.bats: panva/jose on Node.js.
// JOSE_PREFIX names the npm prefix jose was installed into.
//
//   verify CERT.der ALG AUD TOKEN   importX509 + jwtVerify; prints the claims
//   sign KEY.pem CERT.der ALG AUD   a token signed with our key, our header profile
//   forge KIND CERT.der ALG AUD     a forgery naming our certificate:
//                                   otherkey | none | hs256pub
//   chain FIRST.der ALG STORE.json  walk the store's hand-off statements from
//                                   FIRST, each verified with the certificate
//                                   before it; prints each link's thumbprint
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const jose = require(path.join(process.env.JOSE_PREFIX, 'node_modules', 'jose'));

const der = (p) => fs.readFileSync(p);
const pemOf = (d) =>
  '-----BEGIN CERTIFICATE-----\n' + d.toString('base64').match(/.{1,64}/g).join('\n') +
  '\n-----END CERTIFICATE-----\n';
const x5t = (d) => crypto.createHash('sha256').update(d).digest('base64url');
const claims = (aud) => ({ iss: 'node-jose', aud, cmd: 'ping', jti: crypto.randomBytes(16).toString('base64url') });

async function signWith(key, alg, d, aud) {
  return new jose.SignJWT(claims(aud))
    .setProtectedHeader({ alg, typ: 'JWT', 'x5t#S256': x5t(d) })
    .setIssuedAt().setExpirationTime('5m').sign(key);
}

async function main() {
  const [cmd, ...a] = process.argv.slice(2);
  if (cmd === 'verify') {
    // PEM made by `openssl x509 -inform DER` in the bats file when given .pem
    const [certPath, alg, aud, token] = a;
    const pem = certPath.endsWith('.pem') ? fs.readFileSync(certPath, 'utf8') : pemOf(der(certPath));
    const key = await jose.importX509(pem, alg);
    const { payload, protectedHeader } = await jose.jwtVerify(token, key, { audience: aud, algorithms: [alg] });
    console.log(JSON.stringify({ header: protectedHeader, payload }));
  } else if (cmd === 'sign') {
    const [keyPath, certPath, alg, aud] = a;
    const key = await jose.importPKCS8(fs.readFileSync(keyPath, 'utf8'), alg);
    console.log(await signWith(key, alg, der(certPath), aud));
  } else if (cmd === 'forge') {
    const [kind, certPath, alg, aud] = a;
    const d = der(certPath);
    if (kind === 'otherkey') {
      const { privateKey } = await jose.generateKeyPair(alg, { crv: 'Ed25519' });
      console.log(await signWith(privateKey, alg, d, aud));
    } else if (kind === 'none') {
      const h = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT', 'x5t#S256': x5t(d) })).toString('base64url');
      const p = Buffer.from(JSON.stringify({ ...claims(aud), iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
      console.log(`${h}.${p}.`);
    } else if (kind === 'hs256pub') {
      // The classic confusion: the public key (PEM text) as the HMAC secret.
      const secret = new TextEncoder().encode(crypto.createPublicKey(pemOf(d)).export({ type: 'spki', format: 'pem' }));
      console.log(await signWith(secret, 'HS256', d, aud));
    } else {
      throw new Error('unknown forge kind ' + kind);
    }
  } else if (cmd === 'chain') {
    const [firstPath, alg, storePath] = a;
    const store = JSON.parse(fs.readFileSync(storePath, 'utf8'));
    // Index the statements by the certificate that signed them (read, not trusted).
    const byFrom = new Map();
    for (const c of store.certificates) if (c.handoff) byFrom.set(c.thumbprint, c.handoff);
    let cert = der(firstPath);
    let gen = 0;
    for (;;) {
      const tp = crypto.createHash('sha256').update(cert).digest('hex');
      console.log(tp);
      const token = byFrom.get(tp);
      if (!token) break;
      const key = await jose.importX509(pemOf(cert), alg);
      const { payload } = await jose.jwtVerify(token, key, {
        audience: '*', issuer: 'authcert hand-off', algorithms: [alg] });
      if (payload.cmd !== 'hand-off' || payload.args.from !== tp) throw new Error('not a link from ' + tp);
      if (!(payload.args.gen > gen)) throw new Error('generation went back');
      gen = payload.args.gen;
      cert = Buffer.from(payload.args.certificate, 'base64url');
      if (crypto.createHash('sha256').update(cert).digest('hex') !== payload.args.thumbprint)
        throw new Error('the link names another certificate');
    }
  } else {
    throw new Error('usage: verify|sign|forge|chain');
  }
}

main().catch((e) => {
  console.error(`jose_tool: ${e.code || e.name}: ${e.message}`);
  process.exit(1);
});
