// Shared by the dashboard's browser tests: logging in when the server asks for it, running the
// `celeriac` CLI against the same broker as the server, collecting browser errors.
import { execFileSync } from 'node:child_process';
import { expect, type Page } from '@playwright/test';

/// The URL prefix the dashboard is served under (scripts/e2e.sh serves it at /tasks behind
/// nginx); `''` at the root.
export const urlPrefix = process.env.CELERIAC_URL_PREFIX ?? '';

/// The browser URL of a dashboard path: `url('/workers')` is `/tasks/workers`, `url('/')` the
/// overview (`/tasks`).
export function url(path: string): string {
  if (path === '/' && urlPrefix !== '') return urlPrefix;
  return `${urlPrefix}${path}`;
}

/// Logs in only when the server redirects to /login (user `admin`, password from E2E_PASSWORD,
/// unless another user is given). `path` is a dashboard path, without the prefix.
export async function login(
  page: Page,
  path = '/',
  user = 'admin',
  password = process.env.E2E_PASSWORD ?? '',
): Promise<void> {
  await loginAt(page, url(path), user, password);
}

/// `login` for a full URL (`target`), e.g. on a server other than the one under test.
export async function loginAt(
  page: Page,
  target: string,
  user = 'admin',
  password = process.env.E2E_PASSWORD ?? '',
): Promise<void> {
  await page.goto(target);
  if (new URL(page.url()).pathname.endsWith('/login')) {
    await page.getByLabel(/user/i).fill(user);
    await page.getByLabel(/password/i).fill(password);
    await page.getByRole('button', { name: /log ?in|sign ?in/i }).click();
    await page.waitForURL((target) => !target.pathname.endsWith('/login'));
    await page.goto(target);
  }
}

/// Opens dashboard `path` (no prefix) and waits until the WASM has taken over the page and the
/// live stream is open.
export async function open(page: Page, path: string): Promise<void> {
  await login(page, path);
  await expect(page.getByTestId('hydrated')).toBeVisible();
  await expect(page.getByTestId('live-status')).toHaveText('live');
}

/// `celeriac call NAME --args ARGS [extra...]`; returns the new task's id.
export function callTask(name: string, args: string, ...extra: string[]): string {
  const binary = process.env.CELERIAC_BIN ?? 'celeriac';
  const output = execFileSync(binary, ['call', name, '--args', args, ...extra], {
    encoding: 'utf8',
    env: process.env,
  });
  const lines = output.trim().split('\n');
  return lines[lines.length - 1].trim();
}

/// Every page error, console error and HTTP error the page meets, for a final `toEqual([])`.
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('response', (response) => {
    if (response.status() >= 400) errors.push(`${response.status()} ${response.url()}`);
  });
  return errors;
}
