// Holoptic dashboard: every page is drawn from the /v1 API, read and written with the
// session cookie (HttpOnly; writes carry the session's CSRF token). No build step.

const main = document.getElementById('main');
const tabs = document.getElementById('tabs');
const account = document.getElementById('account');

let session = null; // { agent_id, csrf_token }
let me = null; // the signed-in agent

// ---------- small helpers ----------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

class Problem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(method, path, body, { idempotent = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session) headers['X-CSRF-Token'] = session.csrf_token;
  if ((method === 'POST' || method === 'PATCH') && idempotent) headers['Idempotency-Key'] = crypto.randomUUID();
  const res = await fetch('/v1' + path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new Problem(res.status, typeof data === 'object' ? data : { detail: String(data) });
  return data;
}
const get = (path) => api('GET', path);

async function all(path, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

const enc = encodeURIComponent;
const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

function when(iso, day = false) {
  if (!iso) return '—';
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, (day ? dayFmt : dateFmt).format(d));
}

// Decimal strings are formatted exactly (Intl reads a string as an exact decimal).
function num(value, scale) {
  if (value === null || value === undefined) return '—';
  const opts = scale === undefined ? { maximumFractionDigits: 20 } : { minimumFractionDigits: scale, maximumFractionDigits: scale };
  return new Intl.NumberFormat(undefined, opts).format(value);
}
function pct(share) {
  return new Intl.NumberFormat(undefined, { style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(share);
}

// Exact comparison of decimal strings.
function cmpDec(a, b) {
  const parse = (x) => {
    const neg = x.startsWith('-');
    const [i, f = ''] = (neg ? x.slice(1) : x).split('.');
    return { neg, i: BigInt(i || '0'), f };
  };
  const A = parse(String(a)), B = parse(String(b));
  const width = Math.max(A.f.length, B.f.length);
  const val = (p) => (p.i * 10n ** BigInt(width) + BigInt((p.f.padEnd(width, '0')) || '0')) * (p.neg ? -1n : 1n);
  const d = val(A) - val(B);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

function numHead(text) { return h('th', { scope: 'col', class: 'num' }, text); }

function badge(text) { return h('span', { class: `badge ${text}` }, text.replace('_', ' ')); }

function notice(text, kind = '') { return h('p', { class: `notice ${kind}`, role: kind === 'bad' ? 'alert' : 'status' }, text); }

function table(headers, rows, { caption } = {}) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    caption ? h('caption', { class: 'muted' }, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => (typeof x === 'string' ? h('th', { scope: 'col' }, x) : x)))),
    h('tbody', {}, rows)));
}

function field(label, input, hint) {
  const id = `f-${input.name}`;
  input.id = id;
  const err = h('p', { class: 'error', id: `${id}-error`, hidden: true });
  input.setAttribute('aria-describedby', `${id}-error`);
  return h('label', { for: id }, label, hint ? h('span', { class: 'muted' }, hint) : null, input, err);
}

// Runs a form's submission: clears old errors, and puts the API's problem next to the field it
// names (or at the top of the form).
function submitter(form, run) {
  const general = h('p', { class: 'error', role: 'alert', hidden: true });
  form.prepend(general);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    general.hidden = true;
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    for (const el of form.querySelectorAll('.error[id]')) el.hidden = true;
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      await run(new FormData(form));
    } catch (e) {
      showProblem(form, general, e);
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

function showProblem(form, general, e) {
  const p = e instanceof Problem ? e.problem : { detail: String(e) };
  const name = p.field ? String(p.field).split(/[.[]/)[0] : null;
  const input = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    const err = document.getElementById(`${input.id}-error`);
    err.textContent = `${p.field}: ${p.detail}`;
    err.hidden = false;
    input.focus();
  } else {
    general.textContent = p.field ? `${p.field}: ${p.detail}` : (p.detail || p.title);
    general.hidden = false;
  }
}

function go(path) { window.location.assign(path); }

// Draws the page's main content (skipping absent parts).
function show(...parts) {
  main.replaceChildren(...parts.flat(Infinity).filter((x) => x !== null && x !== undefined && x !== false));
}

// ---------- session ----------

async function loadSession() {
  try {
    session = await get('/auth/session');
    me = await get('/agents/me');
  } catch {
    session = null;
    me = null;
  }
}

function drawAccount() {
  account.replaceChildren();
  if (me) {
    account.append(h('span', {}, 'Signed in as ', h('strong', { 'data-testid': 'me' }, me.display_name)),
      h('button', { class: 'link', type: 'button', onclick: signOut }, 'Sign out'));
  } else {
    account.append(h('a', { href: `/signin?next=${enc(location.pathname + location.search)}` }, 'Sign in'));
  }
}

async function signOut() {
  await api('DELETE', '/auth/session');
  go('/');
}

async function openSession(body) {
  session = await api('POST', '/auth/session', body, { idempotent: false });
}

function nextPath() {
  const next = new URLSearchParams(location.search).get('next');
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

async function pageSignIn() {
  document.title = 'Sign in · Holoptic';
  const keyForm = submitter(h('form', { class: 'stack', 'aria-label': 'Sign in with an API key' },
    field('API key', h('input', { name: 'api_key', type: 'password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit' }, 'Sign in')), async (fd) => {
    await openSession({ api_key: fd.get('api_key') });
    go(nextPath());
  });
  const parts = [h('h1', {}, 'Sign in'), keyForm,
    h('p', { class: 'muted' }, 'Your API key was shown once, when you joined a network or registered. New here? Open a network and join it.')];
  if (window.ethereum) {
    const status = h('p', { class: 'error', role: 'alert', hidden: true });
    parts.push(h('h2', {}, 'Or with your wallet'),
      h('button', { type: 'button', onclick: () => signInWithEthereum(status) }, 'Sign in with Ethereum'), status);
  }
  show(...parts);
}

// Keccak-256 (Ethereum's, with the original padding), for EIP-55 address checksums: wallets
// hand out lower-case addresses and EIP-4361 messages carry the checksummed form.
const MASK = (1n << 64n) - 1n;
const RC = [0x1n, 0x8082n, 0x800000000000808an, 0x8000000080008000n, 0x808bn, 0x80000001n, 0x8000000080008081n,
  0x8000000000008009n, 0x8an, 0x88n, 0x80008009n, 0x8000000an, 0x8000808bn, 0x800000000000008bn, 0x8000000000008089n,
  0x8000000000008003n, 0x8000000000008002n, 0x8000000000000080n, 0x800an, 0x800000008000000an, 0x8000000080008081n,
  0x8000000000008080n, 0x80000001n, 0x8000000080008008n];
const ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]];
const rotl = (v, n) => (n === 0 ? v : ((v << BigInt(n)) | (v >> BigInt(64 - n))) & MASK);
function keccakF(A) {
  for (let round = 0; round < 24; round++) {
    const C = [0, 1, 2, 3, 4].map((x) => A[x] ^ A[x + 5] ^ A[x + 10] ^ A[x + 15] ^ A[x + 20]);
    const D = [0, 1, 2, 3, 4].map((x) => C[(x + 4) % 5] ^ rotl(C[(x + 1) % 5], 1));
    for (let i = 0; i < 25; i++) A[i] ^= D[i % 5];
    const B = new Array(25);
    for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) B[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(A[x + 5 * y], ROT[x][y]);
    for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) A[x + 5 * y] = B[x + 5 * y] ^ (~B[((x + 1) % 5) + 5 * y] & MASK & B[((x + 2) % 5) + 5 * y]);
    A[0] ^= RC[round];
  }
}
function keccak256(bytes) {
  const rate = 136;
  const padded = new Uint8Array(Math.floor(bytes.length / rate) * rate + rate);
  padded.set(bytes);
  padded[bytes.length] ^= 0x01;
  padded[padded.length - 1] ^= 0x80;
  const A = new Array(25).fill(0n);
  for (let off = 0; off < padded.length; off += rate) {
    for (let i = 0; i < rate / 8; i++) {
      let lane = 0n;
      for (let b = 7; b >= 0; b--) lane = (lane << 8n) | BigInt(padded[off + i * 8 + b]);
      A[i] ^= lane;
    }
    keccakF(A);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((A[i >> 3] >> BigInt(8 * (i & 7))) & 0xffn);
  return out;
}
function checksumAddress(address) {
  const lower = address.toLowerCase().replace(/^0x/, '');
  const hash = keccak256(new TextEncoder().encode(lower));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const nibble = (hash[i >> 1] >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    out += nibble >= 8 ? lower[i].toUpperCase() : lower[i];
  }
  return out;
}

// EIP-4361: the wallet signs a message carrying a nonce of ours; the server checks it.
async function signInWithEthereum(status) {
  status.hidden = true;
  try {
    const [address] = await window.ethereum.request({ method: 'eth_requestAccounts' });
    const chainHex = await window.ethereum.request({ method: 'eth_chainId' });
    const nonce = await api('POST', '/auth/siwe/nonce', undefined, { idempotent: false });
    const checksummed = checksumAddress(address);
    const message = [
      `${nonce.domain || location.host} wants you to sign in with your Ethereum account:`,
      checksummed, '', 'Sign in to Holoptic.', '',
      `URI: ${location.origin}`, 'Version: 1', `Chain ID: ${parseInt(chainHex, 16)}`,
      `Nonce: ${nonce.nonce}`, `Issued At: ${new Date().toISOString()}`,
      `Expiration Time: ${new Date(Date.now() + 5 * 60 * 1000).toISOString()}`,
    ].join('\n');
    const signature = await window.ethereum.request({ method: 'personal_sign', params: [message, address] });
    await openSession({ message, signature });
    go(nextPath());
  } catch (e) {
    status.textContent = e instanceof Problem ? e.problem.detail : String(e.message || e);
    status.hidden = false;
  }
}

// ---------- pages ----------

async function pageHome() {
  document.title = 'Networks · Holoptic';
  const networks = await all('/networks');
  show(h('h1', {}, 'Networks'),
    networks.length === 0 ? notice('No network is visible to you yet.') :
      table(['Network', 'Visibility', 'Joining', 'Created'], networks.map((n) => h('tr', {},
        h('td', {}, h('a', { href: `/n/${enc(n.slug)}` }, n.name), h('br'), h('span', { class: 'muted' }, n.description)),
        h('td', {}, n.visibility === 'public' ? 'public' : 'members only'),
        h('td', {}, n.join_policy === 'open' ? 'open' : 'by invite'),
        h('td', {}, when(n.created_at, true))))));
}

function drawTabs(net, current) {
  const base = `/n/${enc(net.slug)}`;
  const items = [['', 'Overview'], ['/shares', 'Value shares'], ['/contributions', 'Contributions'],
    ['/governance', 'Equation & governance'], ['/distributions', 'Distributions'], ['/journal', 'Journal']];
  tabs.replaceChildren(h('ul', {}, items.map(([p, label]) => h('li', {},
    h('a', { href: base + p, 'aria-current': p === current ? 'page' : null }, label)))));
}

// Loads what every network page needs: the network, its members, whether the viewer is one.
async function networkContext(slug) {
  let net;
  try {
    net = await get(`/networks/${enc(slug)}`);
  } catch (e) {
    if (e instanceof Problem && [401, 403, 404].includes(e.status)) {
      show(h('h1', {}, 'Not available'),
        notice(me ? 'This network does not exist, or it is for its members only and you are not one.'
          : 'This network does not exist, or it is for its members only. Sign in to see it.', 'bad'),
        me ? null : h('p', {}, h('a', { href: `/signin?next=${enc(location.pathname)}` }, 'Sign in')));
      return null;
    }
    throw e;
  }
  const members = await all(`/networks/${enc(net.id)}/members`);
  const byId = new Map(members.map((m) => [m.agent_id, m]));
  const mine = me ? byId.get(me.id) : null;
  const name = (id) => (byId.get(id) ? byId.get(id).display_name : id ? `${id.slice(0, 8)}…` : '—');
  const memberLink = (id) => (id ? h('a', { href: `/n/${enc(net.slug)}/members/${id}` }, name(id)) : '—');
  const scaleOf = (code) => (net.currencies.find((c) => c.code === code) || { scale: 2 }).scale;
  return { net, members, byId, mine, name, memberLink, scaleOf, base: `/n/${enc(net.slug)}`, path: `/networks/${enc(net.id)}` };
}

function joinPanel(ctx) {
  if (ctx.mine) return null;
  const { net } = ctx;
  const needsInvite = net.join_policy === 'invite';
  const inputs = [];
  if (!me) inputs.push(field('Your name', h('input', { name: 'display_name', required: true, autocomplete: 'name' })));
  if (needsInvite) inputs.push(field('Invite code', h('input', { name: 'invite_code', required: true })));
  const form = submitter(h('form', { class: 'stack', 'aria-label': 'Join this network' }, ...inputs,
    h('button', { type: 'submit' }, 'Join')), async (fd) => {
    const body = {};
    if (!me) body.display_name = fd.get('display_name');
    if (needsInvite) body.invite_code = fd.get('invite_code');
    const joined = await api('POST', `${ctx.path}/members`, body);
    if (joined.api_key) {
      await openSession({ api_key: joined.api_key });
      show(h('h1', {}, `Welcome to ${net.name}`),
        h('div', { class: 'secret' }, h('p', {}, 'Your API key — save it now, it is shown only once. You sign in with it:'),
          h('p', {}, h('code', { 'data-testid': 'api-key' }, joined.api_key))),
        h('p', {}, h('a', { href: ctx.base }, 'Continue to the network')));
      await loadSession();
      drawAccount();
    } else {
      go(ctx.base);
    }
  });
  return h('section', { class: 'card' }, h('h2', {}, 'Join'),
    h('p', {}, me ? 'You are not a member of this network yet.' : 'Join as a new member: you get an API key to sign in with.'), form);
}

// A plain-words account of a value equation.
function describeEquation(eq, ctx) {
  const out = [];
  const kinds = (k) => (k && k.length ? k.join(', ').replaceAll('_', ' ') : 'all kinds');
  const buckets = eq.buckets.map((b) => {
    const of = b.share === 'remaining' ? 'of what the buckets before it leave' : 'of the income';
    let how;
    if (b.to) how = b.to.agent ? `goes to ${ctx.name(b.to.agent)}` : `goes to the account “${b.to.account}”`;
    else {
      const p = b.pool.policy;
      const which = `contributions of ${kinds(b.pool.kinds)}${b.pool.tags ? ` tagged ${b.pool.tags.join(', ')}` : ''}`;
      if (p.type === 'pro_rata') how = `is split pro rata to the weighted value of ${which}${p.claim === 'debt' ? ', as a debt repaid until the claims are paid' : p.claim === 'once' ? ', each contribution paid once' : ''}`;
      else if (p.type === 'immediate') how = `is split by the value of ${which} in the last ${p.periods} periods of ${p.period_days} days`;
      else if (p.type === 'recent') how = `is split by the value of ${which}, discounted by ${pct(p.discount)} for each ${p.period_days}-day period of age`;
      else if (p.type === 'balanced') how = `tops up whoever has been paid less than their lifetime share of ${which}`;
      else how = `is split by the ${p.type} policy over ${which}`;
    }
    return h('li', {}, h('strong', {}, `${num(b.percent)}%`), ` ${of} (“${b.name}”) ${how}.`);
  });
  out.push(h('ol', {}, buckets));
  const rules = [];
  rules.push(`A contribution's value is its quantity × the rate for its kind${eq.multipliers && Object.keys(eq.multipliers).length ? ' × the multiplier for its kind' : ''} (default rate ${num(eq.default_rate || '1')}).`);
  for (const r of eq.rates || []) rules.push(`Rate for ${r.kind.replace('_', ' ')}${r.skill ? ` (${r.skill})` : ''}${r.agent_id ? ` by ${ctx.name(r.agent_id)}` : ''}: ${num(r.rate)} per unit.`);
  for (const [k, m] of Object.entries(eq.multipliers || {})) rules.push(`Multiplier for ${k.replace('_', ' ')}: ×${num(m)}.`);
  for (const [k, f] of Object.entries(eq.formulas || {})) rules.push(`Value of ${k.replace('_', ' ')} contributions: ${f}.`);
  if (eq.decay_half_life_days) rules.push(`Value halves every ${eq.decay_half_life_days} days of age.`);
  if (eq.validation) rules.push(`A contribution counts once ${eq.validation.approvals_required} other member(s) approve it; ${eq.validation.rejections_required} rejection(s) reject it.`);
  if (eq.governance) {
    const g = eq.governance;
    rules.push(`Changing these rules takes a vote of ${g.voting_days ?? '—'} days, a quorum of ${num(g.quorum_percent ?? '—')}% and ${num(g.threshold_percent ?? '—')}% yes.`);
  }
  if (eq.token) rules.push(`Tokens are minted ${eq.token.mint_on === 'never' ? 'never' : `on ${eq.token.mint_on}`} (${num(eq.token.per_unit || '1')} per unit of value)${eq.token.transferable ? '; they can be transferred' : ''}${eq.token.vesting ? `; they vest over ${eq.token.vesting.duration_days} days after a ${eq.token.vesting.cliff_days}-day cliff` : ''}.`);
  out.push(h('ul', {}, rules.map((r) => h('li', {}, r))));
  return out;
}

async function pageOverview(ctx) {
  const { net } = ctx;
  document.title = `${net.name} · Holoptic`;
  const [shares, recent, pending, equation] = await Promise.all([
    get(`${ctx.path}/shares?limit=1`).catch(() => null),
    get(`${ctx.path}/contributions?limit=10`),
    get(`${ctx.path}/contributions?status=pending&limit=50`),
    get(`${ctx.path}/equation`).catch(() => null),
  ]);
  show(
    h('h1', {}, net.name), net.description ? h('p', {}, net.description) : null,
    h('div', { class: 'grid' },
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Members'), h('div', { class: 'stat', 'data-testid': 'member-count' }, ctx.members.length)),
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Total weighted value'), h('div', { class: 'stat', 'data-testid': 'total-value' }, shares ? num(shares.total_value) : '—')),
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Pending validations'), h('div', { class: 'stat' }, pending.items.length)),
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Equation in force'), h('div', { class: 'stat' }, equation ? `v${equation.version}` : '—'))),
    joinPanel(ctx),
    h('h2', {}, 'Recent contributions'), contributionTable(ctx, recent.items),
    h('p', {}, h('a', { href: `${ctx.base}/contributions` }, 'All contributions, and log yours')),
    h('h2', {}, 'Waiting for validation'),
    pending.items.length ? contributionTable(ctx, pending.items) : notice('Nothing is waiting.'),
    h('h2', {}, 'Members'),
    table(['Member', 'Role', 'Joined'], ctx.members.map((m) => h('tr', {},
      h('td', {}, ctx.memberLink(m.agent_id)), h('td', {}, m.role), h('td', {}, when(m.joined_at, true))))),
    h('h2', {}, 'The equation in force'),
    equation ? describeEquation(equation.equation, ctx) : notice('No equation yet.'),
    h('p', {}, h('a', { href: `${ctx.base}/governance` }, 'Proposals and votes')));
}

function contributionTable(ctx, items, { actions = false } = {}) {
  if (!items.length) return notice('No contributions.');
  return table(['When', 'Member', 'What', numHead('Quantity'), 'Status', ...(actions ? ['Validate'] : [])], items.map((c) => h('tr', { 'data-contribution': c.id },
    h('td', {}, when(c.occurred_at)),
    h('td', {}, ctx.memberLink(c.agent_id)),
    h('td', {}, h('span', {}, c.kind.replace('_', ' ')), c.description ? [h('br'), h('span', { class: 'muted' }, c.description)] : null),
    h('td', { class: 'num' }, `${num(c.quantity)} ${c.unit}`),
    h('td', {}, badge(c.status), h('br'), h('span', { class: 'muted' }, `${c.approvals} ✓ ${c.rejections} ✗`)),
    actions ? h('td', {}, validateControls(ctx, c)) : null)));
}

function validateControls(ctx, c) {
  if (!ctx.mine || c.status !== 'pending') return '';
  if (c.agent_id === me.id || c.recorded_by === me.id) return h('span', { class: 'muted' }, 'yours');
  const note = h('input', { name: 'note', 'aria-label': 'Note', placeholder: 'note (optional)', size: 12 });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const decide = (decision) => async () => {
    err.hidden = true;
    try {
      await api('POST', `${ctx.path}/contributions/${c.id}/validations`, { decision, note: note.value || null });
      go(location.pathname + location.search);
    } catch (e) {
      err.textContent = e instanceof Problem ? e.problem.detail : String(e);
      err.hidden = false;
    }
  };
  return h('div', { class: 'actions' }, note,
    h('button', { type: 'button', onclick: decide('approve') }, 'Approve'),
    h('button', { type: 'button', class: 'secondary', onclick: decide('reject') }, 'Reject'), err);
}

const KINDS = ['work', 'cash', 'material', 'equipment_use', 'space', 'citation', 'relationship', 'other'];

async function pageContributions(ctx) {
  document.title = `Contributions · ${ctx.net.name}`;
  const q = new URLSearchParams(location.search);
  const filters = new URLSearchParams();
  for (const k of ['status', 'kind', 'agent']) if (q.get(k)) filters.set(k, q.get(k));
  const page = await get(`${ctx.path}/contributions?${filters}&limit=100${q.get('cursor') ? `&cursor=${enc(q.get('cursor'))}` : ''}`);
  const select = (name, label, options) => h('label', {}, label, h('select', { name },
    h('option', { value: '' }, 'any'), options.map(([v, t]) => h('option', { value: v, selected: q.get(name) === v }, t))));
  const filterForm = h('form', { class: 'inline', method: 'get', 'aria-label': 'Filter contributions' },
    select('status', 'Status', ['pending', 'validated', 'rejected', 'superseded'].map((x) => [x, x])),
    select('kind', 'Kind', KINDS.map((x) => [x, x.replace('_', ' ')])),
    select('agent', 'Member', ctx.members.map((m) => [m.agent_id, m.display_name])),
    h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
  const parts = [h('h1', {}, 'Contributions')];
  if (ctx.mine) parts.push(h('section', { class: 'card' }, h('h2', {}, 'Log a contribution'), logForm(ctx)));
  else parts.push(joinPanel(ctx));
  parts.push(h('h2', {}, 'Feed'), filterForm, contributionTable(ctx, page.items, { actions: true }));
  if (page.next_cursor) {
    const next = new URLSearchParams(filters);
    next.set('cursor', page.next_cursor);
    parts.push(h('p', {}, h('a', { href: `?${next}` }, 'Older contributions')));
  }
  show(...parts);
}

function logForm(ctx) {
  const now = new Date();
  const local = new Date(now.getTime() - now.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const form = h('form', { class: 'stack', 'aria-label': 'Log a contribution' },
    field('Kind', h('select', { name: 'kind' }, KINDS.map((k) => h('option', { value: k }, k.replace('_', ' '))))),
    field('Quantity', h('input', { name: 'quantity', inputmode: 'decimal', required: true })),
    field('Unit', h('input', { name: 'unit', value: 'hours', required: true })),
    field('When', h('input', { name: 'occurred_at', type: 'datetime-local', value: local, required: true })),
    field('Description', h('textarea', { name: 'description', rows: 2 })),
    field('Skill', h('input', { name: 'skill' }), ' (optional)'),
    field('Evidence link', h('input', { name: 'evidence_url', type: 'url' }), ' (optional)'),
    h('button', { type: 'submit' }, 'Log it'));
  return submitter(form, async (fd) => {
    const at = fd.get('occurred_at');
    const body = {
      kind: fd.get('kind'), quantity: fd.get('quantity').trim(), unit: fd.get('unit').trim(),
      occurred_at: at ? new Date(at).toISOString() : '', description: fd.get('description'),
    };
    if (fd.get('skill')) body.skill = fd.get('skill');
    if (fd.get('evidence_url')) body.evidence_url = fd.get('evidence_url');
    await api('POST', `${ctx.path}/contributions`, body);
    go(`${ctx.base}/contributions`);
  });
}

// Charts are drawn at the width they are shown at, so their labels stay readable on a phone.
const chartWidth = () => Math.max(300, Math.min(720, main.clientWidth - 32));

function barChart(rows, { label, value, title }) {
  const width = chartWidth(), rowH = 26, left = Math.min(150, width / 4), right = 70;
  const max = rows.reduce((m, r) => Math.max(m, Number(value(r))), 0) || 1;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${rows.length * rowH + 10}`, role: 'img', 'aria-labelledby': 'chart-title', 'data-testid': 'shares-chart' },
    s('title', { id: 'chart-title' }, title));
  rows.forEach((r, i) => {
    const y = i * rowH + 5;
    // Bar lengths are drawn with floats; every figure shown is the exact decimal.
    const w = Math.max(1, (Number(value(r)) / max) * (width - left - right));
    const name = label(r);
    const room = Math.floor(left / 8);
    svg.append(s('text', { x: left - 6, y: y + 17, 'text-anchor': 'end' }, name.length > room ? `${name.slice(0, room - 1)}…` : name),
      s('rect', { class: 'bar', x: left, y: y + 3, width: w.toFixed(1), height: rowH - 8, 'data-agent': r.agent_id, 'data-share': r.share },
        s('title', {}, `${name}: ${pct(r.share)}`)),
      s('text', { x: left + w + 6, y: y + 17 }, pct(r.share)));
  });
  return svg;
}

async function pageShares(ctx) {
  document.title = `Value shares · ${ctx.net.name}`;
  const q = new URLSearchParams(location.search);
  const currencies = ctx.net.currencies.map((c) => c.code);
  const params = new URLSearchParams();
  if (q.get('at')) params.set('at', new Date(`${q.get('at')}T23:59:59`).toISOString());
  const amount = q.get('amount');
  const currency = q.get('currency') || currencies[0];
  if (amount) { params.set('amount', amount); params.set('currency', currency); }
  const form = h('form', { class: 'inline', method: 'get', 'aria-label': 'Shares at a date' },
    field('At the end of', h('input', { name: 'at', type: 'date', value: q.get('at') || '' })),
    field('What would each get of', h('input', { name: 'amount', inputmode: 'decimal', value: amount || '', placeholder: 'e.g. 1000' })),
    field('Currency', h('select', { name: 'currency' }, currencies.map((c) => h('option', { value: c, selected: c === currency }, c)))),
    h('button', { type: 'submit' }, 'Show'));
  let data;
  try {
    const first = await get(`${ctx.path}/shares?${params}&limit=200`);
    data = first;
    let cursor = first.next_cursor;
    while (cursor) {
      const more = await get(`${ctx.path}/shares?${params}&limit=200&cursor=${enc(cursor)}`);
      data.items.push(...more.items);
      cursor = more.next_cursor;
    }
  } catch (e) {
    const general = h('p', { class: 'error', role: 'alert', hidden: true });
    form.prepend(general);
    show(h('h1', {}, 'Value shares'), form);
    if (e instanceof Problem && e.status === 409) {
      main.append(notice(`${e.problem.detail}. Shares are counted once the members adopt an equation.`),
        h('p', {}, h('a', { href: `${ctx.base}/governance` }, 'Proposals and votes')));
    } else {
      showProblem(form, general, e);
    }
    return;
  }
  const scale = data.currency ? ctx.scaleOf(data.currency) : undefined;
  const columns = [
    ['name', 'Member', (r) => r.display_name, false],
    ['value', 'Weighted value', (r) => r.value, true],
    ['share', 'Share', (r) => r.share, true],
    ...(data.amount ? [['would_get', `Would get of ${num(data.amount, scale)} ${data.currency}`, (r) => r.would_get || '0', true]] : []),
  ];
  let sortKey = q.get('sort') || 'share';
  let descending = q.get('dir') !== 'asc';
  const tbody = h('tbody');
  const head = h('tr');
  const draw = () => {
    const col = columns.find((c) => c[0] === sortKey) || columns[2];
    const rows = [...data.items].sort((a, b) => {
      const d = col[3] ? cmpDec(col[2](a), col[2](b)) : col[2](a).localeCompare(col[2](b));
      return descending ? -d : d;
    });
    head.replaceChildren(...columns.map(([key, label, , numeric]) => h('th', {
      scope: 'col', class: numeric ? 'num' : null,
      'aria-sort': key === sortKey ? (descending ? 'descending' : 'ascending') : 'none',
    }, h('button', { type: 'button', onclick: () => { descending = key === sortKey ? !descending : numeric; sortKey = key; draw(); } }, label,
      key === sortKey ? (descending ? ' ▼' : ' ▲') : ''))));
    tbody.replaceChildren(...rows.map((r) => h('tr', { 'data-agent': r.agent_id },
      h('td', {}, ctx.memberLink(r.agent_id)),
      h('td', { class: 'num', 'data-col': 'value' }, num(r.value)),
      h('td', { class: 'num', 'data-col': 'share' }, pct(r.share)),
      data.amount ? h('td', { class: 'num', 'data-col': 'would_get' }, num(r.would_get || '0', scale)) : null)));
  };
  draw();
  const shown = data.items.filter((r) => cmpDec(r.share, '0') > 0).sort((a, b) => cmpDec(b.share, a.share)).slice(0, 30);
  show(h('h1', {}, 'Value shares'),
    h('p', {}, 'Every member’s share of the network’s weighted value ', data.at ? ['at ', when(data.at)] : null,
      ` under equation v${data.equation_version}. Total weighted value: `, h('strong', { 'data-testid': 'total-value' }, num(data.total_value)), '.'),
    form,
    shown.length ? barChart(shown, { label: (r) => r.display_name, value: (r) => r.share, title: 'Value share per member' }) : notice('No validated value yet.'),
    shown.length < data.items.filter((r) => cmpDec(r.share, '0') > 0).length ? h('p', { class: 'muted' }, 'The chart shows the 30 largest shares; the table has everyone.') : null,
    h('div', { class: 'table-wrap' }, h('table', { 'data-testid': 'shares-table' }, h('thead', {}, head), tbody)));
}

function lineChart(points, title) {
  const width = chartWidth(), height = 200, pad = 40;
  const max = points.reduce((m, p) => Math.max(m, Number(p.value)), 0) || 1;
  const t0 = points[0].t, t1 = points[points.length - 1].t || t0 + 1;
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (width - 2 * pad);
  const y = (v) => height - pad + 10 - (Number(v) / max) * (height - 2 * pad);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': 'value-title', 'data-testid': 'value-chart' },
    s('title', { id: 'value-title' }, title),
    s('line', { class: 'axis', x1: pad, y1: height - pad + 10, x2: width - pad, y2: height - pad + 10 }),
    s('polyline', { class: 'line', points: points.map((p) => `${x(p.t).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ') }));
  for (const p of points) {
    svg.append(s('circle', { cx: x(p.t).toFixed(1), cy: y(p.value).toFixed(1), r: 3, class: 'bar' }, s('title', {}, `${dayFmt.format(new Date(p.t))}: ${num(p.value)}`)));
  }
  svg.append(s('text', { x: pad, y: height - 8 }, dayFmt.format(new Date(t0))),
    s('text', { x: width - pad, y: height - 8, 'text-anchor': 'end' }, dayFmt.format(new Date(t1))),
    s('text', { x: pad, y: 14 }, `max ${num(String(max))}`));
  return svg;
}

async function pageMember(ctx, agentId) {
  const m = ctx.byId.get(agentId);
  if (!m) {
    show(h('h1', {}, 'No such member'), notice('This agent is not a member of the network.', 'bad'));
    return;
  }
  document.title = `${m.display_name} · ${ctx.net.name}`;
  const [contribs, validations, share, token, distributions] = await Promise.all([
    all(`${ctx.path}/contributions?agent=${enc(agentId)}`, 1000),
    all(`${ctx.path}/members/${enc(agentId)}/validations`, 1000),
    get(`${ctx.path}/shares/${enc(agentId)}`).catch(() => ({ value: '0', share: '0', paid: [] })),
    get(`${ctx.path}/token`).catch(() => null),
    all(`${ctx.path}/distributions`, 400),
  ]);
  const balance = token ? await get(`${ctx.path}/balances/${enc(agentId)}`).catch(() => null) : null;
  // Value over time: the member's weighted value at eight dates from their first contribution.
  let chart = notice('No contributions yet.');
  if (contribs.length) {
    const first = contribs.reduce((t, c) => Math.min(t, Date.parse(c.occurred_at)), Date.now());
    const now = Date.now();
    const steps = 8;
    const times = Array.from({ length: steps }, (_, i) => Math.round(first + ((now - first) * i) / (steps - 1)));
    // Before the first equation there is no value to show: those dates count as zero.
    const values = await Promise.all(times.map((t) => get(`${ctx.path}/shares/${enc(agentId)}?at=${enc(new Date(t).toISOString())}`)
      .catch((e) => { if (e instanceof Problem && e.status === 409) return { value: '0' }; throw e; })));
    chart = lineChart(times.map((t, i) => ({ t, value: values[i].value })), `${m.display_name}'s weighted value over time`);
  }
  const payouts = [];
  for (const d of distributions) for (const l of d.lines) if (l.agent_id === agentId) payouts.push({ d, l });
  const contributionsById = new Map(contribs.map((c) => [c.id, c]));
  show(
    h('h1', {}, m.display_name), h('p', { class: 'muted' }, `${m.role} since `, when(m.joined_at, true),
      m.wallet_address ? [' · wallet ', h('code', {}, m.wallet_address)] : null),
    h('div', { class: 'grid' },
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Weighted value'), h('div', { class: 'stat' }, num(share.value))),
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Share'), h('div', { class: 'stat' }, pct(share.share))),
      h('div', { class: 'card' }, h('div', { class: 'muted' }, 'Paid so far'), h('div', { class: 'stat' },
        share.paid.length ? share.paid.map((p) => `${num(p.amount, ctx.scaleOf(p.currency))} ${p.currency}`).join(', ') : '—')),
      token ? h('div', { class: 'card' }, h('div', { class: 'muted' }, `${token.symbol} tokens`),
        balance ? [h('div', { class: 'stat' }, num(balance.total, token.decimals)),
          h('div', {}, `vested ${num(balance.vested, token.decimals)} · unvested ${num(balance.unvested, token.decimals)}`)] : h('div', {}, '—')) : null),
    h('h2', {}, 'Value over time'), chart,
    h('h2', {}, 'Contributions'), contributionTable(ctx, contribs, { actions: true }),
    h('h2', {}, 'Validations of others’ work'),
    validations.length ? table(['When', 'Contribution', 'Decision', 'Note'], validations.map((v) => h('tr', {},
      h('td', {}, when(v.created_at)), h('td', {}, h('code', {}, v.contribution_id.slice(0, 8)), contributionsById.has(v.contribution_id) ? ' (own)' : ''),
      h('td', {}, badge(v.decision)), h('td', {}, v.note || '')))) : notice('None yet.'),
    h('h2', {}, 'Payouts received'),
    payouts.length ? table(['Committed', 'Bucket', numHead('Amount'), 'Paid'], payouts.map(({ d, l }) => h('tr', {},
      h('td', {}, h('a', { href: `${ctx.base}/distributions/${d.id}` }, when(d.committed_at, true))), h('td', {}, l.bucket),
      h('td', { class: 'num' }, `${num(l.amount, d.scale)} ${d.currency}`), h('td', {}, l.paid_reference ? ['✓ ', l.paid_reference] : 'not yet')))) : notice('No payouts yet.'));
}

async function pageGovernance(ctx) {
  document.title = `Equation & governance · ${ctx.net.name}`;
  const [equation, proposals, presets] = await Promise.all([
    get(`${ctx.path}/equation`).catch(() => null),
    all(`${ctx.path}/proposals`, 400),
    get('/presets').catch(() => []),
  ]);
  const currency = ctx.net.currencies[0] ? ctx.net.currencies[0].code : null;
  const q = new URLSearchParams(location.search);
  const amount = q.get('amount') || '1000';
  const parts = [h('h1', {}, 'Equation & governance'), h('h2', {}, equation ? `In force: version ${equation.version}` : 'No equation in force')];
  if (equation) parts.push(h('p', { class: 'muted' }, 'Since ', when(equation.effective_from), '.'), ...describeEquation(equation.equation, ctx));
  const open = proposals.filter((p) => p.status === 'open');
  parts.push(h('h2', {}, 'Open proposals'));
  if (!open.length) parts.push(notice('No proposal is open.'));
  if (open.length && currency) {
    parts.push(h('form', { class: 'inline', method: 'get', 'aria-label': 'What-if amount' },
      field(`What-if amount (${currency})`, h('input', { name: 'amount', inputmode: 'decimal', value: amount })), h('button', { type: 'submit', class: 'secondary' }, 'Recompute')));
  }
  for (const p of open) {
    const section = h('section', { class: 'card', 'data-proposal': p.id }, h('h3', {}, p.title), p.description ? h('p', {}, p.description) : null,
      h('p', {}, `Votes: ${p.yes} yes, ${p.no} no, ${p.abstain} abstain of ${p.eligible_voters} eligible; needs a ${num(p.quorum_percent)}% quorum and ${num(p.threshold_percent)}% yes. Voting ends `, when(p.voting_ends_at), '.'));
    section.append(h('details', {}, h('summary', {}, 'The proposed rules in plain words'), ...describeEquation(p.equation, ctx)));
    if (currency) {
      try {
        const w = await get(`${ctx.path}/proposals/${p.id}/what-if?amount=${enc(amount)}&currency=${enc(currency)}`);
        const sc = ctx.scaleOf(w.currency);
        section.append(table(['Recipient', numHead(`Now (v${w.current_version ?? '—'})`), numHead('If adopted'), numHead('Difference')], w.rows.map((r) => {
          const diff = r.current === null || r.current === undefined ? null : subtract(r.proposed, r.current);
          return h('tr', {}, h('td', {}, r.agent_id ? ctx.memberLink(r.agent_id) : r.display_name || r.account),
            h('td', { class: 'num' }, r.current === null || r.current === undefined ? '—' : num(r.current, sc)),
            h('td', { class: 'num' }, num(r.proposed, sc)),
            h('td', { class: 'num' }, diff === null ? '—' : num(diff, sc)));
        }), { caption: `What each would get of ${num(w.amount, sc)} ${w.currency}, side by side` }));
      } catch (e) {
        section.append(notice(`What-if unavailable: ${e.message}`, 'bad'));
      }
    }
    if (ctx.mine) {
      const err = h('p', { class: 'error', role: 'alert', hidden: true });
      const vote = (v) => async () => {
        err.hidden = true;
        try {
          await api('POST', `${ctx.path}/proposals/${p.id}/votes`, { vote: v });
          go(location.pathname + location.search);
        } catch (e) {
          err.textContent = e instanceof Problem ? e.problem.detail : String(e);
          err.hidden = false;
        }
      };
      section.append(h('div', { class: 'actions' }, h('span', {}, 'Your vote:'),
        h('button', { type: 'button', onclick: vote('yes') }, 'Yes'),
        h('button', { type: 'button', class: 'secondary', onclick: vote('no') }, 'No'),
        h('button', { type: 'button', class: 'secondary', onclick: vote('abstain') }, 'Abstain')), err);
    }
    parts.push(section);
  }
  if (ctx.mine && presets.length) {
    const form = submitter(h('form', { class: 'stack', 'aria-label': 'Propose a preset' },
      field('Title', h('input', { name: 'title', required: true })),
      field('Preset', h('select', { name: 'preset' }, presets.map((x) => h('option', { value: x.name }, x.name)))),
      field('Why', h('textarea', { name: 'description', rows: 2 })),
      h('button', { type: 'submit' }, 'Propose')), async (fd) => {
      await api('POST', `${ctx.path}/proposals`, { title: fd.get('title'), preset: fd.get('preset'), description: fd.get('description') });
      go(location.pathname);
    });
    parts.push(h('h2', {}, 'Propose a change'), h('p', { class: 'muted' }, 'Start from a built-in preset; custom equations can be proposed through the API.'), form,
      h('ul', {}, presets.map((x) => h('li', {}, h('strong', {}, x.name), `: ${x.description}`))));
  }
  const closed = proposals.filter((p) => p.status !== 'open');
  if (closed.length) {
    parts.push(h('h2', {}, 'Decided proposals'), table(['Proposal', 'Status', 'Votes', 'Decided'], closed.map((p) => h('tr', {},
      h('td', {}, p.title), h('td', {}, badge(p.status), p.version ? ` → v${p.version}` : ''), h('td', {}, `${p.yes}/${p.no}/${p.abstain}`), h('td', {}, when(p.decided_at))))));
  }
  show(...parts);
}

// Exact difference of two decimal strings.
function subtract(a, b) {
  const width = Math.max((a.split('.')[1] || '').length, (b.split('.')[1] || '').length);
  const big = (x) => {
    const neg = x.startsWith('-');
    const [i, f = ''] = (neg ? x.slice(1) : x).split('.');
    return (BigInt(i || '0') * 10n ** BigInt(width) + BigInt(f.padEnd(width, '0') || '0')) * (neg ? -1n : 1n);
  };
  const d = big(a) - big(b);
  const neg = d < 0n;
  const digits = (neg ? -d : d).toString().padStart(width + 1, '0');
  const text = width ? `${digits.slice(0, -width)}.${digits.slice(-width)}` : digits;
  return (neg ? '-' : '') + text;
}

async function pageDistributions(ctx) {
  document.title = `Distributions · ${ctx.net.name}`;
  const items = await all(`${ctx.path}/distributions`, 400);
  show(h('h1', {}, 'Distributions'),
    items.length ? table(['Committed', numHead('Amount'), 'Equation', numHead('Lines'), ''], items.map((d) => h('tr', {},
      h('td', {}, when(d.committed_at)), h('td', { class: 'num' }, `${num(d.amount, d.scale)} ${d.currency}`),
      h('td', {}, `v${d.equation_version}`), h('td', { class: 'num' }, d.lines.length),
      h('td', {}, h('a', { href: `${ctx.base}/distributions/${d.id}` }, 'Open'))))) : notice('No distribution has been committed yet.'));
}

async function pageDistribution(ctx, id) {
  const [d, verify] = await Promise.all([
    get(`${ctx.path}/distributions/${enc(id)}`),
    get(`${ctx.path}/distributions/${enc(id)}/verify`).catch((e) => ({ error: e })),
  ]);
  document.title = `Distribution · ${ctx.net.name}`;
  let status;
  if (verify.error) status = notice(`Could not verify: ${verify.error.message}`, 'bad');
  else if (verify.matches && verify.inputs_digest_matches) status = h('p', { class: 'notice ok', role: 'status', 'data-testid': 'verify-status' }, '✓ Verified: recomputed from the stored contributions, every line matches.');
  else status = h('div', { class: 'notice bad', role: 'alert', 'data-testid': 'verify-status' }, h('p', {}, '✗ Does not verify: the recomputation differs from the stored lines.'),
    h('ul', {}, (verify.mismatches || []).map((m) => h('li', {}, typeof m === 'string' ? m : JSON.stringify(m)))));
  const exportErr = h('p', { class: 'error', role: 'alert', hidden: true });
  const download = (format) => async () => {
    exportErr.hidden = true;
    try {
      const out = await get(`${ctx.path}/distributions/${enc(id)}/exports/${format}`);
      for (const f of out.files) {
        const a = h('a', { href: URL.createObjectURL(new Blob([f.content], { type: 'text/plain' })), download: f.name });
        document.body.append(a);
        a.click();
        a.remove();
      }
    } catch (e) {
      exportErr.textContent = `${format}: ${e instanceof Problem ? e.problem.detail : e}`;
      exportErr.hidden = false;
    }
  };
  const total = d.lines.reduce((t, l) => t + BigInt(l.amount_minor), 0n);
  show(h('h1', {}, `Distribution of ${num(d.amount, d.scale)} ${d.currency}`),
    h('p', {}, 'Committed ', when(d.committed_at), ` under equation v${d.equation_version}; contributions up to `, when(d.cutoff), '.'),
    status,
    table(['#', 'Recipient', 'Bucket', numHead('Weight'), numHead(`Exact share (1/10^${d.scale} ${d.currency})`), numHead('Amount'), 'Paid'], d.lines.map((l) => h('tr', { 'data-line': l.line_no },
      h('td', {}, l.line_no), h('td', {}, l.agent_id ? ctx.memberLink(l.agent_id) : l.account || '—'), h('td', {}, l.bucket),
      h('td', { class: 'num' }, num(l.weight)), h('td', { class: 'num mono' }, l.exact_share),
      h('td', { class: 'num', 'data-col': 'amount' }, num(l.amount, d.scale)), h('td', {}, l.paid_reference ? ['✓ ', l.paid_reference] : payControl(ctx, d, l)))),
    { caption: `The lines sum to ${num(String(total), 0)} minor units = ${num(d.amount, d.scale)} ${d.currency}.` }),
    h('h2', {}, 'Exports'), h('div', { class: 'actions' },
      ['csv', 'safe-csv', 'safe-batch', 'merkle', 'uniswap', 'disperse'].map((f) => h('button', { type: 'button', class: 'secondary', onclick: download(f) }, f))),
    exportErr,
    h('p', { class: 'muted' }, 'Hashes: inputs ', h('code', {}, d.inputs_digest), ' · equation ', h('code', {}, d.equation_hash)));
}

// Stewards record a line's payout reference (a bank transfer id, a transaction hash), once.
function payControl(ctx, d, l) {
  if (!ctx.mine || ctx.mine.role !== 'steward') return '—';
  const input = h('input', { name: 'reference', 'aria-label': `Payout reference for line ${l.line_no}`, placeholder: 'reference', size: 14 });
  const err = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', { class: 'actions', 'aria-label': `Mark line ${l.line_no} paid` }, input,
    h('button', { type: 'submit', class: 'secondary' }, 'Mark paid'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    try {
      await api('POST', `${ctx.path}/distributions/${d.id}/lines/${l.line_no}/payment`, { reference: input.value.trim() });
      go(location.pathname);
    } catch (e) {
      input.setAttribute('aria-invalid', 'true');
      err.textContent = e instanceof Problem ? `${e.problem.field ? `${e.problem.field}: ` : ''}${e.problem.detail}` : String(e);
      err.hidden = false;
    }
  });
  return form;
}

async function pageJournal(ctx) {
  document.title = `Journal · ${ctx.net.name}`;
  const q = new URLSearchParams(location.search);
  const after = q.get('after_seq');
  const [page, verify] = await Promise.all([
    get(`${ctx.path}/journal?limit=100${after ? `&after_seq=${enc(after)}` : ''}`),
    get(`${ctx.path}/journal/verify`).catch((e) => ({ error: e })),
  ]);
  let status;
  if (verify.error) status = notice(`Could not verify: ${verify.error.message}`, 'bad');
  else if (verify.ok) status = h('p', { class: 'notice ok', role: 'status', 'data-testid': 'journal-status' }, `✓ The hash chain of all ${verify.entries} sealed entries is unbroken, every distribution recomputes and every balance equals its entries${verify.unsealed ? ` (${verify.unsealed} entries not sealed yet)` : ''}. Head #${verify.head_seq}: `, h('code', {}, verify.head_hash || '—'));
  else status = h('div', { class: 'notice bad', role: 'alert', 'data-testid': 'journal-status' }, h('p', {}, '✗ The journal does not verify.'),
    verify.first_bad_entry ? h('p', {}, `First bad entry: #${verify.first_bad_entry.seq} — ${verify.first_bad_entry.problem}`) : null,
    h('ul', {}, [...verify.distribution_problems, ...verify.ledger_problems].map((p) => h('li', {}, typeof p === 'string' ? p : JSON.stringify(p)))));
  show(h('h1', {}, 'Journal'), status,
    table(['#', 'When', 'Kind', 'Actor', 'Hash'], page.items.map((e) => h('tr', {},
      h('td', {}, e.seq), h('td', {}, when(e.recorded_at)), h('td', {}, e.kind), h('td', {}, e.actor ? ctx.memberLink(e.actor) : '—'),
      h('td', {}, h('code', { title: e.hash }, `${e.hash.slice(0, 16)}…`))))),
    page.next_after_seq ? h('p', {}, h('a', { href: `?after_seq=${page.next_after_seq}` }, 'Later entries')) : null);
}

// ---------- routing ----------

async function route() {
  await loadSession();
  drawAccount();
  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (path === '/') return pageHome();
  if (path === '/signin') return pageSignIn();
  const m = path.match(/^\/n\/([^/]+)(\/.*)?$/);
  if (!m) {
    show(h('h1', {}, 'Not found'));
    return undefined;
  }
  const ctx = await networkContext(decodeURIComponent(m[1]));
  if (!ctx) return undefined;
  const rest = m[2] || '';
  const tab = rest.match(/^\/(shares|contributions|governance|distributions|journal)/);
  drawTabs(ctx.net, tab ? `/${tab[1]}` : '');
  let sub;
  if (rest === '') return pageOverview(ctx);
  if (rest === '/shares') return pageShares(ctx);
  if (rest === '/contributions') return pageContributions(ctx);
  if (rest === '/governance') return pageGovernance(ctx);
  if (rest === '/distributions') return pageDistributions(ctx);
  if ((sub = rest.match(/^\/distributions\/([^/]+)$/))) return pageDistribution(ctx, sub[1]);
  if (rest === '/journal') return pageJournal(ctx);
  if ((sub = rest.match(/^\/members\/([^/]+)$/))) return pageMember(ctx, sub[1]);
  show(h('h1', {}, 'Not found'));
  return undefined;
}

route().then(() => {
  document.body.dataset.ready = 'true';
}).catch((e) => {
  show(h('h1', {}, 'Something went wrong'), notice(e instanceof Problem ? `${e.problem.title}: ${e.problem.detail}` : String(e), 'bad'));
  document.body.dataset.ready = 'true';
});
