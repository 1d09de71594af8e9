// Drives Debian's chromium (Playwright) to the Usage section of the Insights
// page as USER (the development login), which must show a row for USER per
// user and one for NAMESPACE per team. Saves insights-usage-light.png and
// insights-usage-dark.png (the section alone) into ARTIFACTS. Prints "ok".
// Usage: node insights_usage.mjs DASHBOARD_URL USER NAMESPACE ARTIFACTS
import { goto, launch } from './chromium.mjs';

const [base, user, namespace, artifacts] = process.argv.slice(2);
const { browser, fail } = await launch();
const context = await browser.newContext({ colorScheme: 'light', viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const section = page.locator('section[aria-labelledby="usage"]');
const shot = (name) => section.screenshot({ path: `${artifacts}/insights-usage-${name}.png` });
try {
  await goto(page, `${base}/login`);
  await page.click(`button:has-text("Log in as ${user}")`);
  await page.waitForURL(`${base}/`);
  await goto(page, `${base}/insights?range=7d`);
  if (!(await section.locator('h2').textContent()).includes('Usage over 7d')) await fail('no Usage section');
  const row = (per, name) => section.locator(`table[data-per="${per}"] tbody tr:has(td:text-is("${name}"))`);
  if (await row('user', user).count() !== 1) await fail(`no row of ${user} per user`);
  if (await row('team', namespace).count() !== 1) await fail(`no row of ${namespace} per team`);
  await shot('light');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('dark');
  console.log('ok');
} catch (e) {
  await page.screenshot({ path: `${artifacts}/insights-usage-failure.png`, fullPage: true }).catch(() => {});
  await fail(e.stack || String(e));
}
await browser.close();
