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

// Logs in at the test provider's own forms (login, then consent).
export async function providerLogin(page, base, user) {
  await page.goto(`${base}/login`);
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  await page.click('button[type="submit"]'); // consent
  await page.waitForURL(`${base}/`);
}
