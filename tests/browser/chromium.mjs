// What every browser script shares: Debian's chromium launched headless by
// Playwright, and a failure that closes it and exits non-zero.
import { chromium } from 'playwright-core';

export async function launch() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const fail = async (msg) => { console.error(`FAIL: ${msg}`); await browser.close(); process.exit(1); };
  return { browser, fail };
}

// Chromium fails every request in flight with net::ERR_NETWORK_CHANGED
// when an address of the machine changes — here when a test's pod gets its
// veth, or another test binary's node its bridge, at that moment. `steadily`
// runs a flow that starts by going to `start` and tries it again from there
// when a request of it failed so (also a redirect's next hop, which shows
// as a navigation interrupted by Chromium's error page naming the error);
// any other failure is the flow's.
export async function steadily(page, start, flow, options = {}) {
  for (let attempt = 1; ; attempt++) {
    let changed = false;
    const seen = (r) => { if (r.failure()?.errorText === 'net::ERR_NETWORK_CHANGED') changed = true; };
    page.on('requestfailed', seen);
    try {
      const answer = await page.goto(start, options);
      if (flow) await flow();
      return answer;
    } catch (e) {
      changed ||= String(e.message).includes('ERR_NETWORK_CHANGED') || await errorPageSays(page, e, 'ERR_NETWORK_CHANGED');
      if (attempt >= 6 || !changed) throw e;
      console.error(`network changed during ${start}; again (${attempt})`);
    } finally {
      page.off('requestfailed', seen);
    }
  }
}

// Whether navigating failed to Chromium's error page (`error` says so, or
// the page is there), and that page names the error `code`.
export async function errorPageSays(page, error, code) {
  if (!String(error.message).includes('chrome-error://') && !page.url().startsWith('chrome-error://')) return false;
  // The error page may commit a moment after the navigation failed.
  await page.waitForURL(/^chrome-error:/, { timeout: 5000 }).catch(() => {});
  await page.waitForLoadState('domcontentloaded', { timeout: 5000 }).catch(() => {});
  const text = await page.evaluate(() => document.body?.innerText ?? '').catch(() => '');
  return text.includes(code);
}

// `page.goto`, again when the machine's network changed under it.
export async function goto(page, url, options = {}) {
  return steadily(page, url, null, options);
}

// Logs in at the test provider's own forms, which the page shows: the
// login, then the consent page once it is there (a click before it loaded
// would press the login form's button again); returns once the provider
// sent the browser on to `back` (a URL or a pattern).
export async function providerForms(page, user, back) {
  // A flow tried again may find the provider remembering the login.
  const login = page.locator('input[name="login"]');
  await Promise.race([
    login.waitFor({ state: 'attached', timeout: 30000 }),
    page.waitForURL(back, { timeout: 30000 }),
  ]).catch(() => {});
  if (await login.count() === 0) {
    await page.waitForURL(back, { timeout: 1000 });
    return;
  }
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  const consent = page.locator('input[name="prompt"][value="consent"]');
  await Promise.race([
    consent.waitFor({ state: 'attached', timeout: 30000 }),
    page.waitForURL(back, { timeout: 30000 }),
  ]).catch(() => {});
  if (await consent.count() > 0) await page.click('button:has-text("Continue")');
  await page.waitForURL(back, { timeout: 30000 });
}

// Logs in to the dashboard at `base` through the test provider.
export async function providerLogin(page, base, user) {
  await steadily(page, `${base}/login`, () => providerForms(page, user, `${base}/`));
}
