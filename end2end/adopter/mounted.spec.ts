// The dashboard nested at /tasks in a team's axum app, behind the app's own login: the app's
// login form lets staff in, the dashboard's pages hydrate from the bundle embedded in
// celeriac-server (the app was built with plain cargo), and its live data arrives.
import { test, expect } from '@playwright/test';

test('the mounted dashboard hydrates behind the host app login', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));

  await page.goto('/tasks/workers');
  // Anonymous: the host's login form, asked to come back to the page.
  await expect(page).toHaveURL(/\/login\?next=\/tasks\/workers$/);
  await page.locator('input[name=name]').fill('grace');
  await page.locator('input[name=password]').fill(process.env.STAFF_PASSWORD ?? '');
  await page.getByRole('button', { name: 'Sign in' }).click();

  await expect(page).toHaveURL(/\/tasks\/workers$/);
  await expect(page.getByTestId('hydrated')).toBeVisible();
  // The app's own worker (hello worker -B, started by the script) is listed, live.
  await expect(page.getByText(process.env.ADOPTER_WORKER ?? 'hello@')).toBeVisible();

  // Client-side navigation inside the hydrated app stays under the prefix.
  await page.getByRole('link', { name: 'Periodic' }).first().click();
  await expect(page).toHaveURL(/\/tasks\/periodic$/);
  await expect(page.getByText('hello.tick').first()).toBeVisible();

  // The dashboard's "Log out" leads to the host's logout, which ends the host's session.
  await page.getByTestId('logout').click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/tasks');
  await expect(page).toHaveURL(/\/login\?next=\/tasks$/);

  expect(errors).toEqual([]);
});
