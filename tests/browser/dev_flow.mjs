// Drives Debian's chromium (Playwright) through `portico dev`'s dashboard as a
// newcomer would: the development login page, log in as a demo user, the
// catalog, deploy the web application, its page, and the deployments list.
// Saves a screenshot of each page into ARTIFACTS (names start with dev-).
// The list must also show each ALSO_LISTED deployment of NAMESPACE.
// Usage: node dev_flow.mjs DASHBOARD_URL USER NAMESPACE NAME ARTIFACTS [ALSO_LISTED...]
import { goto, launch } from './chromium.mjs';

const [base, user, namespace, name, artifacts, ...alsoListed] = process.argv.slice(2);
const { browser, fail } = await launch();
const page = await browser.newPage();
const shot = (what) => page.screenshot({ path: `${artifacts}/dev-${what}.png`, fullPage: true });
try {
  await goto(page, `${base}/login`);
  if (!(await page.textContent('h1')).includes('Log in')) await fail('no login page');
  await shot('login');
  await page.click(`button:has-text("Log in as ${user}")`);
  await page.waitForURL(`${base}/`);
  if (!(await page.textContent('h1')).includes('Catalog')) await fail('no catalog after login');
  await shot('catalog');

  await page.click('li.card:has-text("Web application") >> text=Deploy');
  await page.fill('input[name="__name"]', name);
  await page.fill('input[name="__namespace"]', namespace);
  await page.fill('input[name="image"]', 'docker.io/library/nginx:1.27');
  await page.click('button:has-text("Create")');
  await page.waitForURL(`${base}/deployments/${namespace}/${name}`);
  await shot('deployment');

  await page.click('nav >> text=Deployments');
  await page.waitForURL(`${base}/deployments`);
  for (const n of [name, ...alsoListed]) {
    if (await page.locator(`a[href="/deployments/${namespace}/${n}"]`).count() !== 1) await fail(`${n} is not in the list`);
  }
  await shot('deployments');
  console.log('ok');
} catch (e) {
  await shot('failure').catch(() => {});
  await fail(e.stack || String(e));
}
await browser.close();
