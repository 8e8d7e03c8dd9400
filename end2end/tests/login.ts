// Logging in through the dashboard's login form with the account scripts/e2e.sh created.
import { expect, Page } from '@playwright/test';

export async function login(page: Page): Promise<void> {
  const user = process.env.E2E_USER ?? 'admin';
  const password = process.env.E2E_PASSWORD ?? '';
  await page.goto('/login');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).not.toHaveURL(/\/login/);
}
