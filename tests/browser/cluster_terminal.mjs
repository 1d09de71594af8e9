// Drives Debian's chromium (Playwright) through a terminal in another
// cluster: the development login as USER, the Terminals page offering the
// cluster TITLE (light theme), the Team shell opened there, its page naming
// the cluster, xterm.js connecting by itself once that cluster's node runs
// the pod, and the shell answering on the screen with the ConfigMap only
// that cluster holds and a Forbidden for team-b (dark theme). Saves
// screenshots into ARTIFACTS (names start with cluster-). Prints "ok".
// Usage: node cluster_terminal.mjs DASHBOARD_URL USER CLUSTER TITLE ARTIFACTS
import { goto, launch } from './chromium.mjs';

const [base, user, cluster, title, artifacts] = process.argv.slice(2);
const { browser, fail } = await launch();
const context = await browser.newContext({ colorScheme: 'light' });
const page = await context.newPage();
const shot = (name) => page.screenshot({ path: `${artifacts}/cluster-${name}.png`, fullPage: true });
try {
  await goto(page, `${base}/login`);
  await page.click(`button:has-text("Log in as ${user}")`);
  await page.waitForURL(`${base}/`);
  await page.click('nav >> text=Terminals');
  await page.waitForURL(`${base}/terminals`);
  const card = page.locator('li.card:has-text("Team shell")');
  const choice = card.locator('select[name="cluster"]');
  const offered = await choice.locator('option').allTextContents();
  if (!offered.some((o) => o.startsWith(title))) await fail(`${title} is not offered: ${offered}`);
  await card.locator('input[name="namespace"]').fill('team-a');
  await choice.selectOption(cluster);
  await shot('terminals-light');
  await card.locator('button').click();
  await page.waitForURL(/\/terminals\/team-a\/shell-[0-9a-f]+$/);
  if (!(await page.textContent('p.cluster')).includes(title)) await fail('the page does not name the cluster');

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.waitForSelector('#terminal .xterm');
  await page.waitForFunction(() => /Connected/.test(document.getElementById('attach-status').textContent), null, { timeout: 180000 });
  const run = async (command, expect) => {
    await page.click('#terminal');
    await page.keyboard.type(`${command}\n`);
    await page.waitForFunction((re) => new RegExp(re).test(document.querySelector('#terminal .xterm-rows').textContent), expect, { timeout: 30000 })
      .catch(async () => fail(`no ${expect} after ${command}; the screen: ${await page.textContent('#terminal .xterm-rows')}`));
  };
  await run('clear; kubectl get configmap only-in-cluster-b -o name', 'configmap/only-in-cluster-b');
  await run('kubectl get pods -n team-b', 'Forbidden');
  await shot('terminal-dark');
  await page.click('nav >> text=Terminals');
  await page.waitForURL(`${base}/terminals`);
  if (!(await page.textContent('table')).includes(`in ${title}`)) await fail('the list does not name the cluster');
  await shot('terminals-dark');
  console.log('ok');
} catch (e) {
  await shot('failure').catch(() => {});
  await fail(e.stack || String(e));
}
await browser.close();
