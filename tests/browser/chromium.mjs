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

// Logs in at the test provider's own forms, which the page shows: the
// login, then the consent page once it is there (a click before it loaded
// would press the login form's button again); returns once the provider
// sent the browser on to `back` (a URL or a pattern).
export async function providerForms(page, user, back) {
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
  await page.goto(`${base}/login`);
  await providerForms(page, user, `${base}/`);
}
