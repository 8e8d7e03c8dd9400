// The dashboard shell end to end: server rendering, WASM hydration, a server function call.
import { test, expect } from '@playwright/test';
import { login } from './login';

test('home page hydrates, counts clicks and reaches a server function', async ({ page }) => {
  const browserErrors: string[] = [];
  page.on('pageerror', (error) => browserErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') browserErrors.push(message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) browserErrors.push(`${response.status()} ${response.url()}`);
  });

  await login(page);
  await page.goto('/');
  await expect(page).toHaveTitle('Celeriac');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Celeriac');
  await expect(page.getByTestId('success-state')).toHaveText('SUCCESS');

  // Only the browser's Effect reveals this marker, so it proves the WASM took over the page.
  await expect(page.getByTestId('hydrated')).toBeVisible();

  const clickCount = page.getByTestId('count');
  await expect(clickCount).toHaveText('0');
  await page.getByTestId('increment').click();
  await expect(clickCount).toHaveText('1');
  await page.getByTestId('increment').click();
  await expect(clickCount).toHaveText('2');

  const serverVersion = page.getByTestId('server-version');
  await expect(serverVersion).toHaveText('not asked yet');
  await page.getByTestId('ask-version').click();
  await expect(serverVersion).toHaveText(/^celeriac \d+\.\d+\.\d+/);

  await page.screenshot({ path: 'test-results/home.png', fullPage: true });
  expect(browserErrors).toEqual([]);
});
