// Drives Debian's chromium (Playwright) through the Insights page as USER:
// the overview, action items and compliance findings in the light theme,
// the dark theme, a phone's width, and the page printed to PDF (the report)
// without the navigation. Saves insights-*.png and insights-report.pdf into
// ARTIFACTS. Prints "ok".
// Usage: node insights.mjs DASHBOARD_URL USER ARTIFACTS
import { statSync } from 'node:fs';
import { goto, launch, providerLogin } from './chromium.mjs';

const [base, user, artifacts] = process.argv.slice(2);
const { browser, fail } = await launch();
const context = await browser.newContext({ colorScheme: 'light' });
const page = await context.newPage();
const shot = (name) => page.screenshot({ path: `${artifacts}/insights-${name}.png`, fullPage: true });
try {
  await providerLogin(page, base, user);
  await page.click('nav >> text=Insights');
  await page.waitForURL(`${base}/insights`);
  if (!(await page.textContent('h1')).includes('Insights')) await fail('no Insights page');
  if (await page.locator('#actions + ul.actions li').count() < 1) await fail('no action items');
  if (await page.locator('table.findings tbody tr').count() < 1) await fail('no compliance findings');
  await shot('light');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('dark');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('phone');
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ media: 'print', colorScheme: 'light' });
  if (await page.locator('nav[aria-label="Main"]').isVisible()) await fail('the printed report shows the navigation');
  const pdf = `${artifacts}/insights-report.pdf`;
  await page.pdf({ path: pdf, format: 'A4', printBackground: false });
  if (statSync(pdf).size < 1000) await fail('the report printed to an empty PDF');
  console.log('ok');
} catch (e) {
  await shot('failure').catch(() => {});
  await fail(e.stack || String(e));
}
await browser.close();
