// Drives Debian's chromium (Playwright) through the dashboard as a user:
// login at the real OpenID Connect provider, the catalog, a create form with a
// server-side error shown by its field, the fix, the deployment's page turning
// Ready live (its pods run on the node, from the local image
// portico.local/webapp:1), a pod's log with the line the app wrote, changing
// a parameter, the list, delete, and the page of what is gone (a refusal that
// keeps the layout). Saves a screenshot of each page into ARTIFACTS.
// Usage: node flow.mjs DASHBOARD_URL USER ARTIFACTS
import { goto, launch, providerLogin } from './chromium.mjs';

const [base, user, artifacts] = process.argv.slice(2);
const { browser, fail } = await launch();
const context = await browser.newContext();
const page = await context.newPage();
const shot = (name, tab = page) => tab.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
try {
  await providerLogin(page, base, user);
  if (!(await page.textContent('h1')).includes('Catalog')) await fail('no catalog after login');
  if (await page.locator('text=Ops only').count() > 0) await fail('a template for other groups is shown');
  await shot('catalog');

  await page.click('li.card:has-text("Web application") >> text=Deploy');
  // Chromium checks the name against its pattern (an invalid pattern would be ignored silently).
  const mismatch = (v) => page.fill('input[name="__name"]', v)
    .then(() => page.$eval('input[name="__name"]', (el) => el.validity.patternMismatch));
  if (!(await mismatch('Bad_Name'))) await fail('the browser accepts the name Bad_Name');
  if (await mismatch('browser-shop')) await fail('the browser refuses the name browser-shop');
  if (!(await page.$eval('input[name="image"]', (el) => el.required))) await fail('the image field is not required');
  await page.fill('input[name="__namespace"]', 'team-a');
  // The dev catalog's default for the image: the node's local web app.
  const image = await page.inputValue('input[name="image"]');
  if (image !== 'portico.local/webapp:1') await fail(`the image field shows ${image}, not the dev default`);
  // A message longer than the schema allows: the API server refuses, and says so by the field.
  await page.fill('input[name="message"]', 'x'.repeat(201));
  await page.click('button:has-text("Create")');
  const err = await page.textContent('#error-message');
  if (!err || !err.includes('longer than 200')) await fail(`no error by the message field: ${err}`);
  const top = await page.textContent('p.error[role=alert]');
  if (!top || !top.startsWith('Not saved')) await fail(`the form's headline is ${top}`);
  await shot('create-form-error');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('create-form-error-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  // A list open in another tab adds the new row live, without a reload.
  const list = await page.context().newPage();
  await goto(list, `${base}/deployments`);
  await list.waitForSelector('body[data-live-connected="true"]', { timeout: 30000 });
  if (await list.locator('tr[data-live="team-a/browser-shop"]').count() !== 0) await fail('the row is there before the create');

  await page.fill('input[name="message"]', 'Hello from Portico');
  await page.click('button:has-text("Create")');
  await page.waitForURL(`${base}/deployments/team-a/browser-shop`);
  await shot('deployment');
  // Being set up reads as progress, not as a failure.
  const early = await page.getAttribute('[data-field="ready"]', 'data-state');
  if (!['progress', 'ready'].includes(early)) await fail(`a new deployment's state is ${early}`);
  // Live: the Ready field turns True over Server-Sent Events, without a reload, and its state with it.
  await page.waitForFunction(() => document.querySelector('[data-field="ready"]').textContent === 'True', null, { timeout: 120000 });
  const state = await page.getAttribute('[data-field="ready"]', 'data-state');
  if (state !== 'ready') await fail(`Ready is True but the state is ${state}`);
  await page.reload();
  // Its pods come after the page (read as alice), in their place.
  await page.waitForSelector('[data-fragment][data-fragment-loaded="true"] ul.pods', { timeout: 30000 });
  await shot('deployment-ready');

  // The log of one of its pods, as the kubelet has it.
  const podIp = (await page.textContent('ul.pods [data-ip]')).trim();
  await page.click('ul.pods >> text=log');
  await page.waitForURL(/\/logs\?pod=/);
  const logText = await page.textContent('main');
  if (!logText.includes('Log of pod')) await fail('no log page');
  if (!logText.includes('webapp: serving "Hello from Portico" on port 80')) await fail(`not the app's log: ${logText}`);
  await shot('pod-log');
  // Followed, a line the app writes now appears without a reload: a request
  // to the pod (its httpd logs each one).
  const followState = async () => `${await page.textContent('[data-follow-state]')} | ${await page.textContent('pre.log')}`;
  await page.click('button:has-text("Follow")');
  await page.waitForFunction(() => document.body.dataset.following === 'true', null, { timeout: 30000 })
    .catch(async () => fail(`the log stream did not open: ${await followState()}`));
  // The app's httpd logs each answer ("response:404" for a path it lacks); none was asked for yet.
  const answers = () => page.evaluate(() => (document.querySelector('pre.log').textContent.match(/response:404/g) || []).length);
  const before = await answers();
  const answer = await page.request.get(`http://${podIp}/not-there`, { timeout: 10000 }).catch((e) => e);
  await page.waitForFunction((n) => (document.querySelector('pre.log').textContent.match(/response:404/g) || []).length > n, before, { timeout: 30000 })
    .catch(async () => fail(`no new line after a request (the pod answered ${answer.status ? answer.status() : answer}): ${await followState()}`));
  if ((await answers()) !== before + 1) await fail(`one request, ${await answers() - before} lines`);
  await shot('pod-log-followed');
  await page.click('button:has-text("Stop following")');
  // Its container is offered; a previous run it never had is explained, not an API error.
  const chosen = await page.inputValue('select[name="container"]');
  if (!chosen) await fail('no container offered');
  await page.check('input[name="previous"]');
  await page.click('button:has-text("Show")');
  await page.waitForURL(/previous=1/);
  const prev = await page.textContent('[role="alert"]');
  if (!prev.includes(`Container ${chosen} of`) || !prev.includes('has not restarted, so there is no previous log')) await fail(`previous log: ${prev}`);
  if (await page.locator('input[name="previous"]:checked').count() !== 1) await fail('the choice is not kept');
  await page.goBack();
  await page.goBack();

  // A second tab on the deployment's page sees the parameters change live.
  const watcher = await page.context().newPage();
  await goto(watcher, `${base}/deployments/team-a/browser-shop`);
  await watcher.waitForFunction(() => document.body.dataset.liveConnected === 'true', null, { timeout: 30000 });

  // Change a parameter; the one that cannot change is disabled.
  await page.click('text=Change parameters');
  if (!(await page.isDisabled('#p-port'))) await fail('port can be changed');
  await page.fill('#p-replicas', '2');
  await shot('edit-form');
  await page.click('button:has-text("Update")');
  await page.waitForURL(`${base}/deployments/team-a/browser-shop`);
  if (!(await page.textContent('main')).match(/replicas\s*2/)) await fail('replicas not updated on the page');
  await watcher.waitForFunction(() => {
    const dts = [...document.querySelectorAll('dl[data-parameters] dt')];
    const i = dts.findIndex((dt) => dt.textContent === 'replicas');
    return i >= 0 && dts[i].nextElementSibling.textContent === '2';
  }, null, { timeout: 30000 });
  await watcher.close();

  // The other tab's list got the row from its stream, in its place, and follows its status.
  await list.waitForSelector('tr[data-live="team-a/browser-shop"] a[href="/deployments/team-a/browser-shop"]', { timeout: 30000 });
  await list.waitForFunction(() => document.querySelector('tr[data-live="team-a/browser-shop"] [data-field="ready"]').dataset.state === 'ready', null, { timeout: 60000 });
  // The count follows the rows it adds and drops (one page: every row is shown).
  const shown = await list.locator('tbody[data-live-rows] tr').count();
  const counted = parseInt(await list.textContent('[data-live-count]'), 10);
  if (counted !== shown) await fail(`the list counts ${counted} but shows ${shown} rows`);
  await shot('deployments-live-row', list);

  await page.click('nav >> text=Deployments');
  if (await page.locator('a[href="/deployments/team-a/browser-shop"]').count() !== 1) await fail('not in the list');
  await shot('deployments');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('deployments-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  // The theme button: system, light, dark, and the choice outlives a reload.
  const theme = 'button[data-theme-toggle]';
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  if ((await page.textContent(theme)) !== 'Theme: system') await fail('the theme does not start as the system\'s');
  await page.click(theme);
  await page.click(theme);
  if ((await page.getAttribute('html', 'data-theme')) !== 'dark') await fail('no dark theme chosen');
  await page.reload();
  if ((await page.getAttribute('html', 'data-theme')) !== 'dark') await fail('the chosen theme did not outlive a reload');
  if ((await background()) !== 'rgb(17, 24, 39)') await fail(`dark chosen, the page is ${await background()}`);
  await shot('deployments-dark-chosen');
  await page.click(theme);
  if ((await page.getAttribute('html', 'data-theme')) !== null) await fail('back to the system theme');
  if ((await background()) !== 'rgb(255, 255, 255)') await fail(`the system's light theme, the page is ${await background()}`);

  await page.click('a[href="/deployments/team-a/browser-shop"]');
  await page.check('input[name="confirm"]');
  await page.click('button:has-text("Delete")');
  await page.waitForURL(`${base}/deployments`);
  await shot('after-delete');
  // The other tab drops the row of the deleted deployment.
  await list.waitForSelector('tr[data-live="team-a/browser-shop"]', { state: 'detached', timeout: 60000 });
  await list.close();
  // At 390 px (a phone) the page fits: nothing sticks out sideways.
  const wide = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) await fail(`at 390 px the deployments page is ${overflow} px too wide`);
  await shot('narrow');
  await page.setViewportSize(wide);

  // A page that refuses keeps the layout of a logged-in page, in both themes.
  const refused = await goto(page, `${base}/deployments/team-a/browser-shop`);
  if (refused.status() !== 404) await fail(`a deleted deployment's page answers ${refused.status()}`);
  if (await page.locator('nav[aria-label="Main"]').count() !== 1) await fail('the refusal has no navigation');
  if (await page.locator('a[href="/login"]').count() !== 0) await fail('the refusal offers a logged-in user to log in');
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot('refused-dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await shot('refused');

  const old = (await page.context().cookies()).filter((c) => c.name === '__Host-portico');
  if (old.length !== 1) await fail('no session cookie');
  await page.click('button:has-text("Log out")');
  // The provider asks whether to end its login too (RP-initiated logout),
  // then sends the browser back to the dashboard's logged-out page.
  await page.waitForURL((u) => !u.href.startsWith(base) || u.pathname === '/logged-out', { waitUntil: 'domcontentloaded' });
  if (!page.url().startsWith(base)) {
    await shot('provider-logout');
    await page.click('button[value="yes"]');
    await page.waitForURL(`${base}/logged-out`);
  }
  if (!(await page.textContent('h1')).includes('Logged out')) await fail(`no logout page: ${page.url()}`);
  await shot('logged-out');
  // The old session cookie, replayed in a fresh browser, opens nothing: the
  // dashboard sends it to log in (the provider's own login page).
  const fresh = await browser.newContext();
  await fresh.addCookies(old);
  const replay = await fresh.newPage();
  await goto(replay, `${base}/`);
  if (!replay.url().includes('/interaction/')) await fail(`the old cookie still works: ${replay.url()}`);
  console.log('ok');
} catch (e) {
  await shot('failure').catch(() => {});
  await fail(e.stack || String(e));
}
await browser.close();
