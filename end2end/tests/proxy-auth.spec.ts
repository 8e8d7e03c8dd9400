// The dashboard behind deploy/nginx-proxy-auth.conf (scripts/e2e.sh starts it as shipped, with
// its own ports and password file): nginx asks for the password (auth_basic) and names the user
// in X-Remote-User; the dashboard shows no login form of its own and gives that user the
// --proxy-auth-role (operator here).
import { test, expect } from '@playwright/test';
import { callTask, collectErrors, urlPrefix } from './helpers';

const proxyUrl = process.env.E2E_PROXY_URL ?? '';
const user = process.env.E2E_PROXY_USER ?? 'oper';
const password = process.env.E2E_PROXY_PASSWORD ?? '';

test('nginx authenticates; the dashboard knows the user, its role and what it may do', async ({
  browser,
  playwright,
}) => {
  expect(proxyUrl, 'scripts/e2e.sh sets E2E_PROXY_URL').not.toEqual('');
  const base = `${proxyUrl}${urlPrefix}`;
  const anonymous = await playwright.request.newContext();
  expect((await anonymous.get(`${base}/api/me`)).status()).toEqual(401);
  // A client cannot name itself: nginx overwrites the header with the user it authenticated.
  const forged = await playwright.request.newContext({ httpCredentials: { username: user, password, send: 'always' } });
  const me = await forged.get(`${base}/api/me`, { headers: { 'X-Remote-User': 'admin' } });
  expect(me.status()).toEqual(200);
  expect(await me.json()).toEqual({ name: user, role: 'operator' });

  const context = await browser.newContext({ httpCredentials: { username: user, password, send: 'always' } });
  const page = await context.newPage();
  const errors = collectErrors(page);
  const taskId = callTask('demo.fail', '["behind the proxy"]');
  await page.goto(`${base}/tasks/${taskId}`);
  expect(new URL(page.url()).pathname).toEqual(`${urlPrefix}/tasks/${taskId}`);
  await expect(page.getByTestId('hydrated')).toBeVisible();
  await expect(page.getByTestId('live-status')).toHaveText('live');
  await expect(page.locator('main')).toHaveAttribute('data-role', 'operator');
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'FAILURE', {
    timeout: 15_000,
  });
  // An operator's action goes through; an admin's does not.
  await page.getByTestId('retry').click();
  await page.getByTestId('retry-confirm').click();
  await expect(page.getByTestId('retried-link')).toBeVisible();
  expect((await page.request.get(`${base}/api/audit`)).status()).toEqual(403);
  await page.screenshot({ path: 'test-results/proxy-auth.png', fullPage: true });
  expect(errors.filter((error) => !error.startsWith('403 '))).toEqual([]);
  await context.close();
  await forged.dispose();
  await anonymous.dispose();
});
