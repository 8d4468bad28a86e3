// The dashboard in a real browser (Debian's Chromium driven by playwright-core) against a
// running server: join, log and validate work, vote a proposal after reading its what-if,
// read the shares chart and table, open a verified distribution and the journal, sign in with
// an (injected) Ethereum wallet, and be refused a members-only network anonymously.
// Usage: node dashboard.mjs <base-url> <screenshot-dir>
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { Wallet } from 'ethers';

const [base, shots] = process.argv.slice(2);
if (!base || !shots) throw new Error('usage: node dashboard.mjs <base-url> <screenshot-dir>');
mkdirSync(shots, { recursive: true });

let checks = 0;
function check(ok, what) {
  if (!ok) throw new Error(`FAILED: ${what}`);
  checks += 1;
  console.log(`  ok ${what}`);
}

async function call(method, path, token, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}
const tokenFor = async (key) => (await call('POST', '/v1/auth/token', null, { api_key: key })).access_token;

const ready = (page) => page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
async function open(page, path) {
  await page.goto(base + path);
  await ready(page);
}
// Clicks something that loads a new page (or reloads this one) and waits for it to be drawn.
async function clickAndLoad(page, locator) {
  await Promise.all([page.waitForEvent('framenavigated'), locator.click()]);
  await ready(page);
}
async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

// Ada (through the API) creates a public open network and a members-only one.
const ada = await call('POST', '/v1/agents', null, { display_name: 'Ada' });
const adaToken = await tokenFor(ada.api_key);
await call('POST', '/v1/networks', adaToken, { name: 'Open Fab Lab', slug: 'open-fab-lab', description: 'Machines and the people who run them', currencies: [{ code: 'EUR', scale: 2 }] });
await call('POST', '/v1/networks', adaToken, { name: 'Secret Lab', slug: 'secret-lab', visibility: 'members', currencies: [{ code: 'EUR', scale: 2 }] });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const newContext = (extra = {}) => browser.newContext({ locale: 'en-US', timezoneId: 'Europe/Paris', viewport: { width: 1200, height: 900 }, ...extra });

try {
  console.log('dashboard: join and log work (Grace)');
  const grace = await (await newContext()).newPage();
  await open(grace, '/n/open-fab-lab');
  check(await grace.getByRole('heading', { name: 'Open Fab Lab' }).isVisible(), 'an anonymous visitor sees a public network');
  await grace.getByLabel('Your name').fill('Grace');
  await grace.getByRole('button', { name: 'Join' }).click();
  const graceKey = (await grace.getByTestId('api-key').textContent({ timeout: 10000 })).trim();
  check(graceKey.startsWith('hol_'), 'joining shows the new API key once');
  check((await grace.getByTestId('me').textContent()) === 'Grace', 'and signs the new member in');
  await shot(grace, '01-joined');

  await open(grace, '/n/open-fab-lab/contributions');
  await grace.getByLabel('Quantity').fill('lots');
  await grace.getByLabel('Description').fill('Milled the frame');
  await grace.getByRole('button', { name: 'Log it' }).click();
  const qtyError = grace.locator('#f-quantity-error');
  await qtyError.waitFor({ state: 'visible' });
  check((await qtyError.textContent()).startsWith('quantity'), 'a bad quantity shows the API error next to the Quantity field');
  check((await grace.getByLabel('Quantity').getAttribute('aria-invalid')) === 'true', 'and marks the field invalid');
  await shot(grace, '02-field-error');
  await grace.getByLabel('Quantity').fill('2.5');
  await grace.getByLabel('Skill').fill('cnc');
  await grace.getByLabel('When').fill('2026-11-20T15:00');
  await clickAndLoad(grace, grace.getByRole('button', { name: 'Log it' }));
  const graceRow = grace.locator('tr[data-contribution]', { hasText: 'Milled the frame' });
  check(await graceRow.getByText('pending').isVisible(), 'the logged contribution is listed as pending');
  check(await graceRow.getByText('yours').isVisible(), 'nobody is offered to validate their own work');
  await shot(grace, '03-logged');

  console.log('dashboard: validate as a second member (Ada)');
  const adaPage = await (await newContext()).newPage();
  await open(adaPage, '/signin?next=/n/open-fab-lab/contributions');
  await adaPage.getByLabel('API key', { exact: true }).fill(ada.api_key);
  await clickAndLoad(adaPage, adaPage.getByRole('button', { name: 'Sign in' }));
  check((await adaPage.getByTestId('me').textContent()) === 'Ada', 'Ada signs in with her API key');
  const toApprove = adaPage.locator('tr[data-contribution]', { hasText: 'Milled the frame' });
  await clickAndLoad(adaPage, toApprove.getByRole('button', { name: 'Approve' }));
  check(await adaPage.locator('tr[data-contribution]', { hasText: 'Milled the frame' }).getByText('validated').isVisible(), 'Ada approves it and it is validated');
  await shot(adaPage, '04-validated');

  console.log('dashboard: a proposal, its what-if, and the vote');
  await open(adaPage, '/n/open-fab-lab/governance');
  await adaPage.getByLabel('Title', { exact: true }).fill('Adopt the Sensorica equation');
  await adaPage.locator('#f-preset').selectOption('sensorica');
  await clickAndLoad(adaPage, adaPage.getByRole('button', { name: 'Propose' }));
  await open(grace, '/n/open-fab-lab/governance');
  const proposal = grace.locator('section[data-proposal]', { hasText: 'Adopt the Sensorica equation' });
  const whatIf = proposal.locator('table');
  check(await whatIf.isVisible(), 'the open proposal shows its what-if table');
  check((await whatIf.textContent()).includes('Grace') && (await whatIf.textContent()).includes('900.00'), 'the what-if gives Grace 900.00 of 1,000 under the proposal (10% to the reserve)');
  await shot(grace, '05-proposal');
  await clickAndLoad(grace, proposal.getByRole('button', { name: 'Yes' }));
  check((await grace.locator('section[data-proposal]').textContent()).includes('1 yes'), 'Grace votes yes');
  await open(adaPage, '/n/open-fab-lab/governance');
  await clickAndLoad(adaPage, adaPage.locator('section[data-proposal]').getByRole('button', { name: 'Yes' }));
  check(await adaPage.getByRole('heading', { name: 'In force: version 1' }).isVisible(), 'Ada votes yes: it passes and version 1 is in force');
  check((await adaPage.locator('main').textContent()).includes('10.00%') || (await adaPage.locator('main').textContent()).includes('10%'), 'the rules in force are shown in plain words');
  await shot(adaPage, '06-governance');

  console.log('dashboard: more work, validated the other way round');
  await open(adaPage, '/n/open-fab-lab/contributions');
  await adaPage.getByLabel('Quantity').fill('4');
  await adaPage.getByLabel('Skill').fill('design');
  await adaPage.getByLabel('Description').fill('Drew the frame');
  await adaPage.getByLabel('When').fill('2026-11-21T10:00');
  await clickAndLoad(adaPage, adaPage.getByRole('button', { name: 'Log it' }));
  await open(grace, '/n/open-fab-lab/contributions?status=pending');
  await clickAndLoad(grace, grace.locator('tr[data-contribution]', { hasText: 'Drew the frame' }).getByRole('button', { name: 'Approve' }));

  console.log('dashboard: value shares');
  await open(grace, '/n/open-fab-lab/shares?amount=100&currency=EUR');
  const table = grace.getByTestId('shares-table');
  const rowOf = (name) => table.locator('tbody tr', { hasText: name });
  const cell = async (name, col) => (await rowOf(name).locator(`td[data-col="${col}"]`).textContent()).trim();
  // Ada: 4 h design at 1.5 = 6; Grace: 2.5 h at 1 = 2.5; 90% of 100 EUR split 6 : 2.5.
  check(await cell('Ada', 'value') === '6' && await cell('Grace', 'value') === '2.5', 'the table shows each weighted value (6 and 2.5)');
  check(await cell('Ada', 'share') === '70.59%' && await cell('Grace', 'share') === '29.41%', 'and each share (70.59% and 29.41%)');
  check(await cell('Ada', 'would_get') === '63.53' && await cell('Grace', 'would_get') === '26.47', 'and what each would get of 100 EUR (63.53 and 26.47)');
  check((await grace.getByTestId('total-value').textContent()) === '8.5', 'the total weighted value is 8.5');
  const bars = grace.getByTestId('shares-chart').locator('rect.bar');
  check(await bars.count() === 2, 'the chart has one bar per member with value');
  const widths = await bars.evaluateAll((els) => els.map((e) => [e.getAttribute('data-share'), Number(e.getAttribute('width'))]));
  check(widths[0][0].startsWith('0.7058') && widths[1][0].startsWith('0.2941') && Math.abs(widths[1][1] / widths[0][1] - 2.5 / 6) < 0.01, 'the bars are the shares, in proportion');
  const firstName = async () => (await table.locator('tbody tr').first().locator('td').first().textContent()).trim();
  check(await firstName() === 'Ada', 'the table is sorted by share, largest first');
  await table.getByRole('button', { name: 'Share' }).click();
  check(await firstName() === 'Grace', 'and sorts the other way from the keyboard-reachable header button');
  await shot(grace, '07-shares');
  await grace.setViewportSize({ width: 390, height: 844 });
  await open(grace, '/n/open-fab-lab/shares?amount=100&currency=EUR');
  const overflow = await grace.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 1, 'the shares page fits a phone-width screen');
  await shot(grace, '08-shares-phone');
  await grace.setViewportSize({ width: 1200, height: 900 });

  console.log('dashboard: a committed distribution, verified');
  const income = await call('POST', '/v1/networks/open-fab-lab/income', adaToken, { amount: '500.00', currency: 'EUR', source: 'Sale of a frame', received_at: '2026-11-21T18:00:00Z' });
  const dist = await call('POST', `/v1/networks/open-fab-lab/income/${income.id}/distribution`, adaToken, {});
  await open(grace, `/n/open-fab-lab/distributions`);
  await clickAndLoad(grace, grace.getByRole('link', { name: 'Open' }).first());
  check(grace.url().endsWith(`/distributions/${dist.id}`), 'the list links to the distribution');
  check((await grace.getByTestId('verify-status').textContent()).includes('Verified'), 'the distribution is shown verified');
  const amounts = await grace.locator('td[data-col="amount"]').allTextContents();
  const cents = amounts.map((a) => BigInt(a.replace(/[^0-9]/g, ''))).reduce((x, y) => x + y, 0n);
  check(cents === 50000n, 'its lines sum exactly to 500.00');
  check(amounts.includes('317.65') && amounts.includes('132.35') && amounts.includes('50.00'), 'every line is shown (317.65, 132.35 and 50.00 to the reserve)');
  const [download] = await Promise.all([grace.waitForEvent('download'), grace.getByRole('button', { name: 'csv', exact: true }).click()]);
  const csv = await (await download.createReadStream()).toArray();
  check(Buffer.concat(csv).toString().includes('132.35'), 'the CSV export downloads');
  await shot(grace, '09-distribution');
  check(await grace.getByRole('button', { name: 'Mark paid' }).count() === 0, 'only stewards are offered to mark lines paid');
  await open(adaPage, `/n/open-fab-lab/distributions/${dist.id}`);
  const graceLine = adaPage.locator('tr[data-line]', { hasText: 'Grace' });
  await graceLine.getByRole('button', { name: 'Mark paid' }).click();
  await graceLine.locator('.error').waitFor({ state: 'visible' });
  check((await graceLine.locator('.error').textContent()).includes('reference'), 'an empty payout reference shows the API error on the line');
  await graceLine.getByLabel(/Payout reference/).fill('SEPA-2026-11-22-0001');
  await clickAndLoad(adaPage, graceLine.getByRole('button', { name: 'Mark paid' }));
  check((await adaPage.locator('tr[data-line]', { hasText: 'Grace' }).textContent()).includes('SEPA-2026-11-22-0001'), 'the steward marks Grace\'s line paid with its reference');

  await open(grace, '/n/open-fab-lab/journal');
  check((await grace.getByTestId('journal-status').textContent()).includes('unbroken'), 'the journal is shown verified');
  await shot(grace, '10-journal');

  const graceId = (await call('GET', '/v1/agents/me', await tokenFor(graceKey))).id;
  await open(grace, `/n/open-fab-lab/members/${graceId}`);
  check(await grace.getByTestId('value-chart').isVisible(), "a member's page charts their value over time");
  const memberText = await grace.locator('main').textContent();
  check(memberText.includes('Milled the frame') && memberText.includes('132.35 EUR') && memberText.includes('approve'), 'and lists their contributions, payouts and validations of others');
  check(memberText.includes('SEPA-2026-11-22-0001'), 'with the payout reference of the line paid');
  await shot(grace, '11-member');

  console.log('dashboard: members-only network, CSRF, wallet sign-in');
  const anon = await (await newContext()).newPage();
  await open(anon, '/n/secret-lab');
  check(await anon.getByRole('heading', { name: 'Not available' }).isVisible(), 'an anonymous visitor is refused a members-only network');
  check(!(await anon.locator('main').textContent()).includes('Secret Lab'), 'and sees nothing of it');
  await shot(anon, '12-members-only');
  const adaSecret = await adaPage.evaluate(async () => (await fetch('/v1/networks/secret-lab')).status);
  check(adaSecret === 200, 'its member reads it with the session cookie');

  const forged = await grace.evaluate(async () => (await fetch('/v1/networks/open-fab-lab/contributions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ kind: 'work', quantity: '1', unit: 'hours', occurred_at: '2026-11-21T10:00:00Z' }),
  })).status);
  check(forged === 403, 'a write with the session cookie but without the CSRF token is refused');
  const cookies = await grace.context().cookies();
  const session = cookies.find((c) => c.name === 'holoptic_session');
  check(session && session.httpOnly && session.sameSite === 'Strict' && session.secure, 'the session cookie is HttpOnly, Secure and SameSite=Strict');
  check(!(await grace.evaluate(() => document.cookie)).includes('holoptic_session'), 'and scripts cannot read it');

  const wallet = Wallet.createRandom();
  await call('PATCH', '/v1/agents/me', await tokenFor(graceKey), { wallet_address: wallet.address });
  const walletContext = await newContext();
  await walletContext.exposeFunction('testWalletSign', (message) => wallet.signMessage(message));
  await walletContext.addInitScript((address) => {
    window.ethereum = {
      request: async ({ method, params }) => {
        if (method === 'eth_requestAccounts') return [address];
        if (method === 'eth_chainId') return '0x1';
        if (method === 'personal_sign') return window.testWalletSign(params[0]);
        throw new Error(`unsupported ${method}`);
      },
    };
  }, wallet.address.toLowerCase());
  const walletPage = await walletContext.newPage();
  await open(walletPage, '/signin');
  await clickAndLoad(walletPage, walletPage.getByRole('button', { name: 'Sign in with Ethereum' }));
  check((await walletPage.getByTestId('me').textContent()) === 'Grace', 'Grace signs in with her wallet (EIP-4361, lower-case address checksummed in the page)');

  await clickAndLoad(walletPage, walletPage.getByRole('button', { name: 'Sign out' }));
  check(await walletPage.getByRole('link', { name: 'Sign in' }).isVisible(), 'signing out ends the session');
} finally {
  await browser.close();
}
console.log(`dashboard: ${checks} checks passed; screenshots in ${shots}`);
