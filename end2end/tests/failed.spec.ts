// Bulk retry on the Failed page, the audit log page, and the per task name statistics, against
// `shop serve` with its embedded workers (scripts/e2e.sh; logged in as an admin).
import { test, expect } from '@playwright/test';
import { callTask, collectErrors, open } from './helpers';

test('two failed tasks are selected and retried in bulk, and the audit log shows it', async ({ page }) => {
  const errors = collectErrors(page);
  const token = `bulk-${Date.now()}`;
  const first = callTask('demo.fail', `["${token} one"]`);
  const second = callTask('demo.fail', `["${token} two"]`);

  await open(page, `/failed?search=${token}`);
  const rows = page.getByTestId('task-row');
  for (const taskId of [first, second]) {
    const row = page.locator(`[data-testid="task-row"][data-task-id="${taskId}"]`);
    await expect(row).toHaveAttribute('data-state', 'FAILURE', { timeout: 15_000 });
    await row.getByTestId('row-select').check();
  }
  await expect(page.getByTestId('selected-count')).toHaveText('2 selected');
  await page.getByTestId('retry-selected').click();
  await page.getByTestId('retry-selected-confirm').click();
  await expect(page.getByTestId('bulk-retry-status')).toHaveText(/^Retrying 2 tasks/);
  await expect(page.getByTestId('selected-count')).toHaveText('0 selected');

  // The re-runs fail again and join the list live: four failures with the token.
  await expect(rows).toHaveCount(4, { timeout: 15_000 });
  await expect(page.locator('[data-testid="task-row"][data-state="FAILURE"]')).toHaveCount(4, {
    timeout: 15_000,
  });
  // "Retry all matching" counts first (a dry run); the history has all four once recorded.
  await expect(async () => {
    await page.getByTestId('retry-matching-count').click();
    await expect(page.getByTestId('bulk-retry-status')).toHaveText('4 failed tasks match.', {
      timeout: 1_000,
    });
  }).toPass({ timeout: 15_000 });
  await expect(page.getByTestId('retry-matching')).toBeVisible();
  await page.screenshot({ path: 'test-results/failed.png', fullPage: true });

  // The audit log names the bulk retry; the action filter narrows the rows.
  await page.getByRole('link', { name: 'Audit', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Audit log');
  await open(page, '/audit');
  const bulk = page.locator('[data-testid="audit-row"][data-action="task.bulk_retry"]');
  await expect(bulk.first()).toContainText('2 tasks: selected');
  await expect(bulk.first()).toContainText('admin');
  await page.getByTestId('audit-filter-action').fill('bulk');
  await expect(page.locator('[data-testid="audit-row"]:not([data-action="task.bulk_retry"])')).toHaveCount(0);
  await expect(bulk.first()).toBeVisible();
  await page.screenshot({ path: 'test-results/audit.png', fullPage: true });

  // The Tasks page counts the four failures of demo.fail in the last hour.
  await open(page, '/tasks');
  const stats = page.locator('[data-testid="stats-row"][data-task-name="demo.fail"]');
  await expect(stats).toBeVisible();
  expect(Number(await stats.getByTestId('stats-failed').textContent())).toBeGreaterThanOrEqual(4);
  expect(errors).toEqual([]);
});
