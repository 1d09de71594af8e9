// Drives Debian's chromium (Playwright) through the Insights page's delivery
// figures as USER (a development login): the charts drawn on the server,
// the tables beside them, the failure reasons and one drilled into, the
// scorecard; in the light and the dark theme. Saves
// insights-delivery-{light,dark,template}.png into ARTIFACTS; last, narrows
// the page to one template with its form. Prints "ok".
// Usage: node insights_delivery.mjs DASHBOARD_URL USER ARTIFACTS
import { goto, launch } from './chromium.mjs';

const [base, user, artifacts] = process.argv.slice(2);
const { browser, fail } = await launch();
const context = await browser.newContext({ colorScheme: 'light', viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
const shot = (name) => page.screenshot({ path: `${artifacts}/insights-delivery-${name}.png`, fullPage: true });
try {
  await goto(page, `${base}/login`);
  await page.click(`button:has-text("Log in as ${user}")`);
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  await goto(page, `${base}/insights?range=7d`);
  await page.click('#reasons ~ div table.reasons >> text=RenderFailed');
  await page.waitForURL(/reason=RenderFailed/);
  const charts = await page.locator('svg.chart').count();
  if (charts < 3) await fail(`${charts} charts, not 3 (per team, per template, per reason)`);
  const bars = await page.locator('svg.chart rect.bad').count();
  if (bars < 1) await fail('no stalled bar drawn');
  if (!(await page.textContent('#drill')).includes('RenderFailed')) await fail('the reason was not drilled into');
  if (!(await page.locator('table.scorecard').first().textContent()).includes('delivery-ok')) await fail('delivery-ok is not on the scorecard');
  // The text of a chart takes the theme's colour.
  const fill = async () => page.locator('svg.chart text').first().evaluate((t) => getComputedStyle(t).fill);
  const light = await fill();
  await shot('light');
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await fill();
  if (light === dark) await fail(`the charts' text is ${light} in both themes`);
  await shot('dark');
  // Narrowed to one template with the form: the scope is said, the exports keep it.
  await page.emulateMedia({ colorScheme: 'light' });
  await page.selectOption('form.filters select[name="template"]', 'delivery-later');
  await page.click('form.filters button[type="submit"]');
  await page.waitForURL(/template=delivery-later/);
  if (!(await page.textContent('p.scope')).includes('template delivery-later')) await fail('the scope is not said');
  const csv = await page.getAttribute('a:has-text("CSV")', 'href');
  if (!csv.includes('template=delivery-later')) await fail(`an export loses the scope: ${csv}`);
  await shot('template');
  console.log('ok');
} catch (e) {
  await shot('failure').catch(() => {});
  await fail(e.stack || String(e));
}
await browser.close();
