// Sign-In with Ethereum against a running server, with the real npm `siwe` package making the
// messages and ethers signing them: a fresh wallet is registered, signs in, and every broken
// rule (reused nonce, unknown nonce, expired, wrong domain, wrong chain, changed after signing,
// not yet valid) is refused with a 401 problem.
// Usage: node siwe-login.mjs http://127.0.0.1:PORT
import { SiweMessage, generateNonce } from 'siwe';
import { Wallet } from 'ethers';

const base = process.argv[2];
const host = new URL(base).host;
let checks = 0;
const fail = (msg) => { console.error(`siwe interop: ${msg}`); process.exit(1); };

async function call(method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, type: r.headers.get('content-type'), body: text ? JSON.parse(text) : null };
}

const wallet = Wallet.createRandom();
const agent = await call('POST', '/v1/agents', { display_name: 'siwe interop', wallet_address: wallet.address });
if (agent.status !== 201) fail(`registering the wallet's agent: ${agent.status} ${JSON.stringify(agent.body)}`);

async function nonce() {
  const n = await call('POST', '/v1/auth/siwe/nonce', {});
  if (n.status !== 201) fail(`nonce: ${n.status}`);
  return n.body.nonce;
}

function message(fields) {
  const now = Date.now();
  return new SiweMessage({
    domain: host,
    address: wallet.address,
    statement: 'Sign in to Holoptic',
    uri: `${base}/`,
    version: '1',
    chainId: 1,
    issuedAt: new Date(now).toISOString(),
    expirationTime: new Date(now + 5 * 60_000).toISOString(),
    ...fields,
  }).prepareMessage();
}

async function login(text, signature) {
  return call('POST', '/v1/auth/siwe', { message: text, signature: signature ?? await wallet.signMessage(text) });
}

function refused(r, why) {
  if (r.status !== 401 || r.type !== 'application/problem+json') fail(`${why}: expected a 401 problem, got ${r.status} ${JSON.stringify(r.body)}`);
  checks += 1;
  console.log(`refused (${why}): ${r.body.detail}`);
}

// Accepted: the token is the agent's.
const good = message({ nonce: await nonce() });
const ok = await login(good);
if (ok.status !== 200) fail(`a good message was refused: ${ok.status} ${JSON.stringify(ok.body)}`);
const me = await call('GET', '/v1/agents/me', undefined, ok.body.access_token);
if (me.status !== 200 || me.body.id !== agent.body.agent.id) fail(`the token is not the wallet's agent: ${JSON.stringify(me.body)}`);
checks += 1;
console.log(`accepted: ${wallet.address} signed in as agent ${me.body.id}`);

refused(await login(good), 'nonce reused');
refused(await login(message({ nonce: generateNonce() })), 'nonce never issued');
refused(await login(message({ nonce: await nonce(), expirationTime: new Date(Date.now() - 1000).toISOString() })), 'expired');
refused(await login(message({ nonce: await nonce(), notBefore: new Date(Date.now() + 3_600_000).toISOString() })), 'not yet valid');
refused(await login(message({ nonce: await nonce(), domain: 'phishing.example' })), 'wrong domain');
refused(await login(message({ nonce: await nonce(), chainId: 5 })), 'chain not accepted');
const signed = message({ nonce: await nonce() });
const signature = await wallet.signMessage(signed);
refused(await login(signed.replace('Sign in to Holoptic', 'Sign in to Holoptic and pay'), signature), 'changed after signing');
// The untouched message with that signature still works: the refusals spent nothing.
const again = await login(signed, signature);
if (again.status !== 200) fail(`the untouched message was refused: ${again.status} ${JSON.stringify(again.body)}`);
checks += 1;
console.log(`siwe interop: ${checks} checks passed`);
