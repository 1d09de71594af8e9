// Drives Debian's chromium (Playwright) through the terminal pages as a user:
// login at the real OpenID Connect provider, the Terminals page with verified
// and unverified shortcuts, opening a terminal, the terminal page with
// xterm.js connecting by itself once the node runs the pod, and the shell
// answering on the screen: `kubectl auth whoami` (the Terminal's access
// service account), `kubectl get pods -n team-a` (allowed) and `-n team-b`
// (Forbidden), each kubectl request bounded and typed again once if it
// was lost on its way; a dropped connection made again by the page itself, to the
// same shell; the shell in a second tab ending, with the reason on the page,
// when the first tab deletes the Terminal (that tab in the light theme); the account page's countdown and
// its warning shortly before the end; an admin's pages. Saves screenshots into ARTIFACTS.
// Prints "terminal NAMESPACE/NAME" once the terminal exists, "ok" at the end.
// Usage: node terminal_flow.mjs DASHBOARD_URL USER ARTIFACTS
import { goto, launch, providerLogin } from './chromium.mjs';

const [base, user, artifacts] = process.argv.slice(2);
const { browser, fail } = await launch();
const context = await browser.newContext({ colorScheme: 'dark' });
const page = await context.newPage();
const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
try {
  await providerLogin(page, base, user);

  // Keyboard: the skip link is the first stop and leads to the main content.
  await page.keyboard.press('Tab');
  if ((await page.evaluate(() => document.activeElement.textContent)) !== 'Skip to content') await fail('no skip link first');

  await page.click('nav >> text=Terminals');
  await page.waitForURL(`${base}/terminals`);
  const unverified = page.locator('li.card.unverified');
  if (await unverified.count() < 1) await fail('the ConfigMap shortcut is not offered');
  if (!(await unverified.first().textContent()).includes('not from the administrators')) await fail('no warning on the unverified shortcut');
  await shot('terminals-dark');

  // The terminal's WebSockets pass through Playwright's route (to the real
  // server), so the test can drop one as a network failure would.
  const sockets = [];
  await page.routeWebSocket(/\/attach$/, (ws) => { ws.connectToServer(); sockets.push(ws); });

  const card = page.locator('li.card:has-text("Team shell")');
  await card.locator('input[name="namespace"]').fill('team-a');
  await card.locator('button').click();
  await page.waitForURL(/\/terminals\/team-a\/shell-[0-9a-f]+$/);
  const key = new URL(page.url()).pathname.replace('/terminals/', '');
  console.log(`terminal ${key}`);

  // xterm.js draws the terminal; the page connects once the pod is Ready.
  await page.waitForSelector('#terminal .xterm');
  await page.waitForFunction(() => /Connected/.test(document.getElementById('attach-status').textContent), null, { timeout: 120000 });
  if ((await page.textContent('[data-field="ready"]')) !== 'True') await fail('Ready not shown');
  await shot('terminal-connected');

  // Typed into xterm.js; the answers appear on its screen.
  const screen = () => page.evaluate(() => document.querySelector('#terminal .xterm-rows').textContent);
  // kubectl's requests are bounded (--request-timeout): a request lost on
  // its way from the pod to the API server then ends with kubectl's own
  // error on the screen, and is typed again once, as a user would, saying
  // so on stdout. Any other miss fails.
  const lost = /Unable to connect to the server|Client\.Timeout exceeded|request canceled|i\/o timeout|context deadline exceeded|unable to return a response in the time allotted/;
  const losses = (text) => (text.match(new RegExp(lost.source, 'g')) || []).length;
  const run = async (command, expect, again = true) => {
    // Only a loss after this command counts (a `clear` before the command
    // empties the screen: an earlier loss is then not counted again).
    const lostBefore = losses(await screen());
    await page.click('#terminal');
    await page.keyboard.type(`${command}\n`);
    try {
      await page.waitForFunction(([re, lostRe, n]) => {
        const text = document.querySelector('#terminal .xterm-rows').textContent;
        return new RegExp(re).test(text) || (text.match(new RegExp(lostRe, 'g')) || []).length > n;
      }, [expect, lost.source, lostBefore], { timeout: 30000 });
      const now = await screen();
      if (!new RegExp(expect).test(now)) {
        if (!again) await fail(`${command}: kubectl's request was lost twice; the screen: ${now}`);
        console.log(`note: ${command}: kubectl's request was lost (${now.match(lost)[0]}); typed again`);
        return run(command, expect, false);
      }
    } catch (e) {
      // Still a failure; how much later the answer comes, if at all, says where it was held up.
      const first = await screen();
      const t0 = Date.now();
      let later = 'no answer 60 s later either';
      try {
        await page.waitForFunction((re) => new RegExp(re).test(document.querySelector('#terminal .xterm-rows').textContent), expect, { timeout: 60000 });
        later = `the answer came ${Math.round((Date.now() - t0) / 1000)} s later`;
      } catch (_) { /* reported below */ }
      await fail(`no ${expect} within 30 s after ${command} (${later}); the screen then: ${first}; now: ${await screen()}`);
    }
  };
  await run('clear; kubectl auth whoami --request-timeout=15s', 'system:serviceaccount:portico-terminals:');
  await run('kubectl get pods -n team-a --request-timeout=15s', 'term-[0-9a-f]{10}.*Running');
  await run('kubectl get pods -n team-b --request-timeout=15s', 'Forbidden');
  await shot('terminal-shell');

  // Full screen: the terminal alone, with more rows, and its shell answers.
  const rows = () => page.evaluate(() => document.querySelectorAll('#terminal .xterm-rows > div').length);
  const rowsBefore = await rows();
  await page.click('#fullscreen');
  await page.waitForFunction(() => document.fullscreenElement && document.fullscreenElement.id === 'terminal');
  // The screen is 720 px high, the terminal on the page 60% of it: a third more rows at least.
  await page.waitForFunction((n) => document.querySelectorAll('#terminal .xterm-rows > div').length >= n * 1.33, rowsBefore)
    .catch(async () => fail(`${await rows()} rows in full screen, ${rowsBefore} before`));
  await run('clear; echo "full-$((6*7))"', 'full-42');
  await shot('terminal-fullscreen');
  await page.evaluate(() => document.exitFullscreen());
  await page.waitForFunction(() => !document.fullscreenElement && document.getElementById('fullscreen').textContent === 'Full screen')
    .catch(async () => fail(`full screen not left: the button says ${await page.textContent('#fullscreen')}`));
  await page.waitForFunction((n) => document.querySelectorAll('#terminal .xterm-rows > div').length === n, rowsBefore)
    .catch(async () => fail(`${await rows()} rows after full screen, not ${rowsBefore}`));

  // The connection drops (closed under the page, code 4000 as no server
  // sends it): the page connects again by itself, to the same shell — the
  // variable set before the drop is still there.
  await run('clear; M=kept; echo "mark-$M"', 'mark-kept');
  // (The page may have connected more than once already: before the pod ran, it was refused.)
  const before = sockets.length;
  await sockets[before - 1].close({ code: 4000, reason: 'network drop' });
  await page.waitForFunction(() => /lost/.test(document.getElementById('attach-status').textContent));
  await page.waitForFunction(() => /Connected/.test(document.getElementById('attach-status').textContent), null, { timeout: 30000 });
  if (sockets.length !== before + 1) await fail(`${sockets.length} sockets after the drop, not ${before + 1}`);
  await run('clear; echo "again-$M"', 'again-kept');
  await shot('terminal-reconnected');

  // A second tab (the same session, in the light theme) shows the same
  // terminal; deleting it from the first ends the second's shell, and that
  // page says why and offers no reconnect.
  const light = await browser.newContext({ colorScheme: 'light' });
  await light.addCookies(await context.cookies());
  const second = await light.newPage();
  await goto(second, page.url());
  await second.waitForFunction(() => /Connected/.test(document.getElementById('attach-status').textContent), null, { timeout: 30000 });
  await second.screenshot({ path: `${artifacts}/terminal-connected-light.png`, fullPage: true });
  await page.click('button:has-text("Close and delete")');
  await page.waitForURL(`${base}/terminals`);
  await shot('terminals-after-delete');
  try {
    await second.waitForFunction(() => /has ended/.test(document.getElementById('attach-status').textContent), null, { timeout: 60000 });
  } catch (e) {
    await fail(`the second tab was not told the terminal ended: ${await second.textContent('#attach-status')}`);
  }
  const said = await second.textContent('#attach-status');
  if (!/deleted/.test(said)) await fail(`the reason is not the deletion: ${said}`);
  if (await second.isVisible('#reconnect')) await fail('a reconnect is offered for a deleted terminal');
  if (await second.isVisible('button:has-text("Extend")')) await fail('Extend is offered for a deleted terminal');
  try {
    await second.waitForFunction(() => document.querySelector('[data-field="ready"]').textContent === 'False', null, { timeout: 30000 });
  } catch (e) {
    await fail(`an ended terminal is shown Ready: ${await second.textContent('.status')}`);
  }
  await second.screenshot({ path: `${artifacts}/terminal-ended-light.png`, fullPage: true });
  await light.close();

  // The account page counts down the session's time left.
  await page.click('nav >> text=Account');
  await page.waitForFunction(() => /left\)/.test(document.querySelector('#expires [data-field="left"]').textContent));
  await shot('account');
  if (await page.isVisible('#expires [data-field="warning"]')) await fail('a warning long before the end');
  // A few minutes before the end the page warns, next to Extend. The page's
  // clock is moved forward (Playwright's clock), not waited for.
  const ends = Date.parse(await page.getAttribute('#expires', 'data-expires'));
  await page.clock.install();
  await page.reload();
  await page.clock.fastForward(Math.max(0, ends - Date.now() - 3 * 60000));
  await page.waitForSelector('#expires [data-field="warning"]:not([hidden])');
  if (!(await page.textContent('#expires [data-field="warning"]')).includes('Extend')) await fail('the warning does not say how to keep the session');
  await shot('account-warning');

  // An admin's pages: every session, and the deployments list with its filters.
  const admin = await (await browser.newContext()).newPage();
  await providerLogin(admin, base, 'carol');
  await admin.click('nav >> text=Sessions');
  if (!(await admin.textContent('main')).includes(user)) await fail(`the admin does not see ${user}'s session`);
  await admin.screenshot({ path: `${artifacts}/admin-sessions.png`, fullPage: true });
  await admin.click('nav >> text=Deployments');
  if (await admin.locator('form.filters select[name="user"]').count() !== 1) await fail('no filters for the admin');
  await admin.screenshot({ path: `${artifacts}/admin-deployments.png`, fullPage: true });
  if (errors.length) await fail(`script errors: ${errors.join('; ')}`);
  console.log('ok');
} catch (e) {
  await shot('terminal-failure').catch(() => {});
  await fail(e.stack || String(e));
}
await browser.close();
