// A user logs in to the dashboard whose API server trusts the login
// provider, and takes kubectl access as themselves from the account page:
// the kubeconfig that logs in through kubectl's oidc-login plugin, the
// one-off command with the login's ID token, and the API server's CA. Saves
// them in OUT (kubeconfig, token-command.txt, api-server-ca.crt) and the
// dashboard's cookies in OUT/cookies.txt (`name=value` lines), for the test
// to run kubectl with them and to read pages as that session. Screenshots
// in both themes go to ARTIFACTS.
// Usage: node kubectl_login.mjs DASHBOARD_URL USER OUT ARTIFACTS
import { writeFileSync } from 'node:fs';
import { goto, launch, providerLogin } from './chromium.mjs';

const [base, user, out, artifacts] = process.argv.slice(2);
const { browser, fail } = await launch();
// The provider's certificate is from the test's own CA.
const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
const page = await context.newPage();
const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
const save = async (link, file) => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(link)]);
  await download.saveAs(`${out}/${file}`);
};
try {
  await providerLogin(page, base, user);
  await goto(page, `${base}/account`);
  const section = page.locator('section:has(h2:has-text("kubectl as yourself"))');
  if (await section.count() !== 1) await fail('the account page offers no kubectl as yourself');
  await shot('account-kubectl');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('account-kubectl-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await save('text=Download a kubeconfig that logs you in', 'kubeconfig');
  await page.click('text=A command with your login\'s ID token');
  await page.waitForURL(`${base}/account/token`);
  const command = (await page.textContent('pre.copy code')).trim();
  if (!command.startsWith('kubectl --server=')) await fail(`the token page shows ${command}`);
  writeFileSync(`${out}/token-command.txt`, command);
  await save('text=the API server\'s CA', 'api-server-ca.crt');
  await shot('account-token');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('account-token-dark');
  const cookies = await context.cookies(base);
  writeFileSync(`${out}/cookies.txt`, cookies.map((c) => `${c.name}=${c.value}`).join('\n'));
} catch (e) {
  const body = (await page.textContent('main').catch(() => '')).replace(/\s+/g, ' ');
  await fail(`${e.stack || e}\nat ${page.url()}: ${body}`);
}
await browser.close();
console.log('ok');
