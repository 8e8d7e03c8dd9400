// The dashboard end to end, against `shop serve` with its embedded workers, through nginx
// under the URL prefix (scripts/e2e.sh): server rendering with data, hydration, the live
// stream, the task actions, logout.
import { test, expect } from '@playwright/test';
import { callTask, collectErrors, login, open, url, urlPrefix } from './helpers';

test('every page renders with data, hydrates and is saved as a screenshot', async ({ page }) => {
  const errors = collectErrors(page);
  callTask('demo.add', '[1, 1]');
  await open(page, '/');
  await expect(page).toHaveTitle('Celeriac');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Overview');
  await expect(page.getByTestId('workers-online')).toHaveText(/^[1-9]\d* \/ \d+$/);
  await expect(page.getByTestId('server-version')).toHaveText(/^celeriac \d+\.\d+\.\d+/);
  await expect(page.locator('main')).toHaveAttribute('data-role', 'admin');
  // The embedded beat holds the lease; the chart counts the task above within its minute.
  await expect(page.getByTestId('beat-leader')).toContainText('beat@');
  await expect(page.getByTestId('throughput-chart')).toBeVisible();
  await expect(page.getByTestId('throughput-chart')).not.toHaveAttribute('data-succeeded', '0');
  await page.screenshot({ path: 'test-results/overview.png', fullPage: true });

  for (const [label, path, heading] of [
    ['Workers', '/workers', 'Workers'],
    ['Tasks', '/tasks', 'Tasks'],
    ['Failed', '/failed', 'Failed tasks'],
    ['Queues', '/queues', 'Queues'],
  ]) {
    // Client-side navigation through the bar, then a full load of the same URL.
    await page.getByRole('link', { name: label, exact: true }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(heading);
    await open(page, path);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(heading);
    await page.screenshot({ path: `test-results${path}.png`, fullPage: true });
  }
  await expect(page.getByTestId('queue-row').first()).toBeVisible();
  // The embedded worker answers `active_queues`: it consumes the default queue.
  await expect(
    page.locator('[data-testid="queue-row"][data-queue="celery"] [data-testid="queue-consumers"]'),
  ).toContainText('@');
  await open(page, '/workers');
  await expect(page.getByTestId('worker-row').first()).toBeVisible();
  await expect(page.getByTestId('worker-status').first()).toHaveText('online');
  expect(errors).toEqual([]);
});

test('a task called from the CLI appears on the Tasks page within a second, no reload', async ({ page }) => {
  const errors = collectErrors(page);
  await open(page, '/tasks');
  const taskId = callTask('demo.add', '[2, 3]');
  const row = page.locator(`[data-testid="task-row"][data-task-id="${taskId}"]`);
  await expect(row).toBeVisible({ timeout: 1_000 });
  await expect(row).toHaveAttribute('data-state', 'SUCCESS');
  await expect(row).toContainText('demo.add');

  // The detail page: state, arguments, result, timeline.
  await row.getByRole('link').click();
  await expect(page.getByTestId('task-id')).toHaveText(taskId);
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'SUCCESS');
  await expect(page.getByTestId('task-args')).toHaveText('(2, 3)');
  await expect(page.getByTestId('task-result')).toHaveText('5');
  await expect(page.getByTestId('task-timeline')).toBeVisible();
  await page.screenshot({ path: 'test-results/task-detail.png', fullPage: true });

  // Filters are in the URL and the server renders them.
  await open(page, `/tasks?name=demo.add&task_id=${taskId.slice(0, 8)}`);
  await expect(page.getByTestId('task-row')).toHaveCount(1);
  await open(page, '/tasks?name=demo.nothing');
  await expect(page.getByTestId('task-row')).toHaveCount(0);
  // The filter form navigates in the browser, under the prefix like every link.
  await page.getByTestId('filter-name').fill('demo.add');
  await page.getByTestId('filter-name').press('Enter');
  await page.waitForURL((target) => target.pathname === url('/tasks') && target.search.includes('name=demo.add'));
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Tasks');
  await expect(page.getByTestId('task-row').first()).toBeVisible();
  expect(errors).toEqual([]);
});

test('a failed task is retried from its page and the new task succeeds', async ({ page }) => {
  const errors = collectErrors(page);
  // Its dependency is down for the next three seconds, then back.
  const until = Date.now() / 1000 + 3;
  const taskId = callTask('demo.fail_until', `[${until}]`);
  await open(page, `/tasks/${taskId}`);
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'FAILURE', { timeout: 15_000 });
  await expect(page.getByTestId('task-exception')).toContainText('ConnectionError');
  await expect(page.getByTestId('task-traceback')).toBeVisible();
  await expect.poll(() => Date.now() / 1000, { timeout: 10_000 }).toBeGreaterThan(until);

  await page.getByTestId('retry').click();
  await page.getByTestId('retry-confirm').click();
  const link = page.getByTestId('retried-link');
  await expect(link).toBeVisible();
  const newId = (await link.textContent())?.trim() ?? '';
  expect(newId).not.toEqual(taskId);
  await link.click();
  await expect(page.getByTestId('task-id')).toHaveText(newId);
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'SUCCESS', { timeout: 15_000 });
  await expect(page.getByTestId('task-result')).toHaveText("'ok'");
  await page.screenshot({ path: 'test-results/task-retried.png', fullPage: true });

  // A failure whose message is markup shows it as text; the Failed page retries it per row.
  const markupId = callTask('demo.fail', '["<script>boom()</script>"]');
  await open(page, `/tasks/${markupId}`);
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'FAILURE', { timeout: 15_000 });
  await expect(page.getByTestId('task-exception')).toContainText('<script>boom()</script>');
  await expect(page.locator('pre script')).toHaveCount(0);
  await open(page, '/failed');
  const failedRow = page.locator(`[data-testid="task-row"][data-task-id="${markupId}"]`);
  await expect(failedRow).toBeVisible();
  await failedRow.getByTestId('row-retry').click();
  await expect(failedRow.getByTestId('row-retried')).toBeVisible();
  expect(errors).toEqual([]);
});

test('a countdown task is revoked from its page', async ({ page }) => {
  const errors = collectErrors(page);
  const taskId = callTask('demo.add', '[4, 5]', '--countdown', '10');
  await open(page, `/tasks/${taskId}`);
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', /RECEIVED|PENDING/, { timeout: 15_000 });
  await expect(page.getByTestId('terminate')).toBeDisabled();
  await page.getByTestId('revoke').click();
  await page.getByTestId('revoke-confirm').click();
  await expect(page.getByTestId('revoke-sent')).toContainText(taskId);
  // The worker discards it when its countdown ends and reports it revoked.
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'REVOKED', { timeout: 20_000 });
  await page.screenshot({ path: 'test-results/task-revoked.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('a running task is terminated from its page', async ({ page }) => {
  const errors = collectErrors(page);
  const taskId = callTask('demo.sleep', '[120]');
  await open(page, `/tasks/${taskId}`);
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'STARTED', { timeout: 15_000 });
  await page.getByTestId('terminate').click();
  await page.getByTestId('terminate-confirm').click();
  await expect(page.getByTestId('revoke-sent')).toContainText(taskId);
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'REVOKED', { timeout: 20_000 });
  await page.screenshot({ path: 'test-results/task-terminated.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('the prefix with a slash leads to the overview, and logging out ends access', async ({ page }) => {
  const errors = collectErrors(page);
  await login(page, '/');
  if (urlPrefix !== '') {
    // What people type and nginx's `location /tasks/` hands on.
    await page.goto(`${urlPrefix}/`);
    expect(new URL(page.url()).pathname).toEqual(urlPrefix);
  }
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Overview');
  await expect(page.getByTestId('hydrated')).toBeVisible();
  await page.getByTestId('logout').click();
  await page.waitForURL((target) => target.pathname === url('/login'));

  // The session is gone: pages send the browser to the login form, the API answers 401.
  await page.goto(url('/workers'));
  expect(new URL(page.url()).pathname).toEqual(url('/login'));
  const api = await page.request.get(url('/api/workers'));
  expect(api.status()).toEqual(401);
  const stream = await page.request.get(url('/api/events'));
  expect(stream.status()).toEqual(401);
  await page.screenshot({ path: 'test-results/logged-out.png', fullPage: true });
  expect(errors.filter((error) => !error.startsWith('401 '))).toEqual([]);
});

test('a viewer reads every page but is not offered the actions it may not take', async ({ page }) => {
  const errors = collectErrors(page);
  const taskId = callTask('demo.add', '[6, 7]');
  await login(page, `/tasks/${taskId}`, 'viewer', process.env.E2E_VIEWER_PASSWORD ?? '');
  await expect(page.getByTestId('hydrated')).toBeVisible();
  await expect(page.locator('main')).toHaveAttribute('data-role', 'viewer');
  await expect(page.getByTestId('task-state')).toHaveAttribute('data-state', 'SUCCESS', { timeout: 15_000 });
  await expect(page.getByTestId('retry')).toBeHidden();
  await expect(page.getByTestId('revoke')).toBeHidden();
  await open(page, '/periodic');
  await expect(page.getByTestId('schedule-row').first()).toBeVisible();
  await expect(page.getByTestId('create-schedule')).toBeHidden();
  await expect(page.getByTestId('schedule-run').first()).toBeHidden();
  // The API refuses regardless of what the page shows.
  const refused = await page.request.post(url(`/api/task/retry/${taskId}`), {
    headers: { Origin: new URL(page.url()).origin },
  });
  expect(refused.status()).toEqual(403);
  await page.screenshot({ path: 'test-results/viewer.png', fullPage: true });
  expect(errors.filter((error) => !error.startsWith('403 '))).toEqual([]);
});
