// The browser kubectl's oidc-login plugin opens (it runs `xdg-open URL`; a
// test puts a script of that name first on PATH that runs this one):
// Chromium goes to the plugin's login URL, logs in at the test provider's
// own forms as USER and follows the provider back to the plugin's local
// server, which then has the ID token. Prints `ok`.
// Usage: node kubelogin_browser.mjs URL USER
import { launch, providerForms, steadily } from './chromium.mjs';

const [url, user] = process.argv.slice(2);
const { browser, fail } = await launch();
// The provider's certificate is from the test's own CA, which this
// throwaway profile does not hold.
const context = await browser.newContext({ ignoreHTTPSErrors: true });
const page = await context.newPage();
const back = /^http:\/\/localhost:1?8000\//;
try {
  await steadily(page, url, () => providerForms(page, user, back), { waitUntil: 'domcontentloaded' });
} catch (e) {
  await fail(`the login for kubectl did not reach the plugin: ${e.message}; at ${page.url()}`);
}
await browser.close();
console.log('ok');
