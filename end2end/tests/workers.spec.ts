// The worker detail page against `shop serve`'s embedded workers (scripts/e2e.sh): open it
// from the Workers list, add a consumer for a new queue, see it listed, cancel it. The worker
// is never shut down here: the other tests need it.
import { test, expect } from '@playwright/test';
import { collectErrors, open, urlPrefix } from './helpers';

test('a worker detail page adds and cancels a consumer', async ({ page }) => {
  const errors = collectErrors(page);
  await open(page, '/workers');
  await expect(page.getByTestId('hide-offline')).toBeVisible();
  // Workers of earlier runs may be listed offline; the embedded one is online.
  await page.getByTestId('hide-offline').check();
  const online = page.locator('[data-testid="worker-row"]:not(.offline)').first();
  await expect(online.getByTestId('worker-status')).toHaveText('online');
  const link = online.getByTestId('worker-link');
  const workerName = (await link.textContent())?.trim() ?? '';
  expect(workerName).not.toEqual('');
  await link.click();

  await expect(page.getByTestId('worker-name')).toHaveText(workerName);
  await expect(page.getByTestId('worker-queue').first()).toBeVisible();
  await expect(page.getByTestId('worker-pool-size')).toHaveText(/^\d+$/);
  await expect(page.getByTestId('worker-no-reply')).toHaveCount(0);

  // A full load of the same URL renders on the server, then hydrates.
  await open(page, new URL(page.url()).pathname.slice(urlPrefix.length));
  await expect(page.getByTestId('worker-name')).toHaveText(workerName);

  const queue = `e2e-extra-${Date.now()}`;
  const row = page.locator(`[data-testid="worker-queue"][data-queue="${queue}"]`);
  await page.getByTestId('add-consumer-queue').fill(queue);
  await page.getByTestId('add-consumer').click();
  await expect(page.getByTestId('worker-action-result')).toHaveText(`add consumer ${queue}`);
  await expect(row).toBeVisible();
  await page.screenshot({ path: 'test-results/worker-detail.png', fullPage: true });

  await row.getByTestId('cancel-consumer').click();
  await expect(page.getByTestId('worker-action-result')).toHaveText(`no longer consuming from ${queue}`);
  await expect(row).toHaveCount(0);
  // The original queues are still consumed.
  await expect(page.getByTestId('worker-queue').first()).toBeVisible();
  expect(errors).toEqual([]);
});
