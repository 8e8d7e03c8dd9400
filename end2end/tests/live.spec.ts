// The live stream across a server restart: a second `celeriac serve` (no worker, no beat, the
// same database and broker as the one scripts/e2e.sh started) is stopped under an open page
// and started again on the same port; the page must notice, then reconnect by itself and show
// new task events without a reload.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { test, expect } from '@playwright/test';
import { callTask, loginAt, url } from './helpers';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/// `celeriac serve` on `port`; its output goes to the test's log through `lines`.
function startServer(port: number, lines: string[]): ChildProcess {
  const binary = process.env.CELERIAC_BIN ?? 'celeriac';
  const server = spawn(binary, ['serve', '--addr', `127.0.0.1:${port}`, '--no-worker', '--no-beat'], {
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [server.stdout, server.stderr]) {
    stream?.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
  }
  return server;
}

async function waitHealthy(base: string): Promise<void> {
  for (let attempt = 0; attempt < 120; attempt++) {
    try {
      const answer = await fetch(`${base}${url('/healthz')}`);
      if (answer.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`no answer from ${base}${url('/healthz')}`);
}

/// Stops `server` as a deploy would (SIGTERM), and waits for it to exit.
async function stopServer(server: ChildProcess): Promise<number | null> {
  if (server.exitCode !== null) return server.exitCode;
  const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
  server.kill('SIGTERM');
  const killed = setTimeout(() => server.kill('SIGKILL'), 20_000);
  const code = await exited;
  clearTimeout(killed);
  return code;
}

test('the live stream reconnects by itself after the server restarts', async ({ page }) => {
  test.setTimeout(120_000);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const log: string[] = [];
  let server = startServer(port, log);
  try {
    await waitHealthy(base);
    await loginAt(page, `${base}${url('/tasks')}`);
    await expect(page.getByTestId('hydrated')).toBeVisible();
    await expect(page.getByTestId('live-status')).toHaveText('live');

    // SIGTERM ends the stream (graceful shutdown closes it) and the server exits cleanly.
    expect(await stopServer(server)).toBe(0);
    await expect(page.getByTestId('live-status')).toHaveText('offline');

    server = startServer(port, log);
    await waitHealthy(base);
    // The session is in the database, so the same tab is let back in without logging in.
    await expect(page.getByTestId('live-status')).toHaveText('live', { timeout: 30_000 });
    const id = callTask('demo.add', '[20, 22]');
    await expect(page.locator(`[data-task-id="${id}"]`)).toBeVisible({ timeout: 15_000 });
    await page.screenshot({ path: 'test-results/live-after-restart.png', fullPage: true });
  } catch (error) {
    console.log(`second server's log:\n${log.join('')}`);
    throw error;
  } finally {
    await stopServer(server);
  }
});
