// Drives Debian's chromium (Playwright) to the access page of a namespace as
// a user who may list its bindings: the table reads in both themes and at
// phone width (no horizontal page scroll), and its export links work; the
// header's search box leads to the search page.
// Usage: node access.mjs DASHBOARD_URL USER NAMESPACE ARTIFACTS
import { launch, providerLogin } from './chromium.mjs';

const [base, user, ns, artifacts] = process.argv.slice(2);
const { browser, fail } = await launch();
const page = await (await browser.newContext()).newPage();
const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
try {
  await providerLogin(page, base, user);
  await page.click('nav[aria-label="Main"] >> text=Access');
  await page.click(`a[href="/access/${ns}"]`);
  if (!(await page.textContent('h1')).includes(`Who has access to ${ns}`)) await fail('no access page');
  if (await page.locator('table.access tbody tr').count() < 3) await fail('fewer than three rows');
  await shot('access');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('access-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 390, height: 844 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  await shot('access-narrow');
  if (wide) await fail('the access page scrolls sideways at 390 px');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=CSV')]);
  if (download.suggestedFilename() !== `access-${ns}.csv`) await fail(`the CSV is named ${download.suggestedFilename()}`);
  // The header's search box, at phone width too.
  await page.fill('form.search input[name="q"]', ns);
  await page.press('form.search input[name="q"]', 'Enter');
  await page.waitForURL(/\/search\?q=/);
  if ((await page.locator('#hits-terminals').count()) !== 1) await fail('the search page shows no Terminals section');
  await shot('search-narrow');
  await page.setViewportSize({ width: 1280, height: 800 });
  await shot('search');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('search-dark');
} catch (e) {
  await fail(e.stack || String(e));
}
await browser.close();
console.log('ok');
