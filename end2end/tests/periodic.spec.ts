// Periodic tasks end to end: the list (with the demo schedule the embedded beat syncs), creating
// an entry, and the click-to-edit crontab: a crontab is edited in place, an invalid value shows
// the field's error, the next runs update as you type; then save, run now and delete.
import { test, expect } from '@playwright/test';
import { collectErrors, open } from './helpers';

test('a crontab is edited in place, an invalid value shows the field\'s error, the next runs update', async ({ page }) => {
  const errors = collectErrors(page);
  await open(page, '/');
  await page.getByRole('link', { name: 'Periodic tasks', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Periodic tasks');
  const demo = page.locator('[data-testid="schedule-row"][data-name="carts.cleanup_expired_carts"]');
  await expect(demo.getByTestId('schedule-description')).toHaveText('Every 5 minutes');

  // Create our own entry so the test does not depend on the demo's state.
  const name = `e2e.report.${Date.now()}`;
  await open(page, '/periodic');
  await page.getByTestId('create-name').fill(name);
  await page.getByTestId('create-task').fill('demo.add');
  await page.getByTestId('create-args').fill('[1, 2]');
  await page.getByTestId('create-crontab').fill('0 9 * * *');
  await page.getByTestId('create-timezone').fill('Europe/Berlin');
  await expect(page.getByTestId('create-description')).toHaveText('At 09:00 (Europe/Berlin)');
  await page.getByTestId('create-submit').click();
  await expect(page.getByTestId('schedule-outcome')).toContainText(name);
  const row = page.locator(`[data-testid="schedule-row"][data-name="${name}"]`);
  await expect(row.getByTestId('schedule-description')).toHaveText('At 09:00 (Europe/Berlin)');
  await page.screenshot({ path: 'test-results/periodic-list.png', fullPage: true });

  // The detail page: fields show as text until clicked.
  await row.getByRole('link', { name }).click();
  await expect(page.getByTestId('schedule-name')).toHaveText(name);
  await expect(page.getByTestId('crontab-hour')).toHaveText('9');
  await expect(page.getByTestId('crontab-description')).toHaveText('At 09:00 (Europe/Berlin)');
  await expect(page.getByTestId('next-run')).toHaveCount(5);
  await expect(page.getByTestId('next-run').first()).toContainText('09:00');

  // An invalid value: the error names the field, no runs, Save refuses.
  await page.getByTestId('crontab-hour').click();
  const hour = page.getByTestId('crontab-input-hour');
  await hour.fill('24');
  await expect(page.getByTestId('crontab-error')).toHaveText('hour: 24 is out of range 0-23');
  await expect(page.getByTestId('next-run')).toHaveCount(0);
  await expect(page.getByTestId('crontab-save')).toBeDisabled();

  // A valid value: description and next runs follow as you type.
  await hour.fill('7');
  await expect(page.getByTestId('crontab-error')).toHaveCount(0);
  await expect(page.getByTestId('crontab-description')).toHaveText('At 07:00 (Europe/Berlin)');
  await expect(page.getByTestId('next-run')).toHaveCount(5);
  for (const run of await page.getByTestId('next-run').all()) {
    await expect(run).toContainText(' 07:00 ');
  }
  await hour.press('Enter');
  await expect(page.getByTestId('crontab-hour')).toHaveText('7');

  // Escape puts back the text the field had.
  await page.getByTestId('crontab-minute').click();
  await page.getByTestId('crontab-input-minute').fill('15');
  await expect(page.getByTestId('crontab-description')).toHaveText('At 07:15 (Europe/Berlin)');
  await page.getByTestId('crontab-input-minute').press('Escape');
  await expect(page.getByTestId('crontab-minute')).toHaveText('0');
  await expect(page.getByTestId('crontab-description')).toHaveText('At 07:00 (Europe/Berlin)');
  await page.screenshot({ path: 'test-results/periodic.png', fullPage: true });

  // Save: the server stores it, and a fresh load shows it.
  await page.getByTestId('crontab-save').click();
  await expect(page.getByTestId('schedule-saved')).toContainText('At 07:00 (Europe/Berlin)');
  await expect(page.getByTestId('schedule-description')).toHaveText('At 07:00 (Europe/Berlin)');
  await open(page, `/periodic/${encodeURIComponent(name)}`);
  await expect(page.getByTestId('crontab-hour')).toHaveText('7');

  // Disable, run now, delete.
  await page.getByTestId('schedule-toggle').click();
  await expect(page.getByTestId('schedule-enabled-state')).toHaveText('no');
  await page.getByTestId('schedule-run').click();
  await expect(page.getByTestId('schedule-saved')).toContainText('sent ');
  await page.getByTestId('schedule-delete').click();
  await page.getByTestId('schedule-delete-confirm').click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Periodic tasks');
  await expect(page.locator(`[data-testid="schedule-row"][data-name="${name}"]`)).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('a solar schedule is created and edited with its next events, a bad latitude names the field', async ({ page }) => {
  const errors = collectErrors(page);
  const name = `e2e.lights.${Date.now()}`;
  await open(page, '/periodic');
  await page.getByTestId('create-name').fill(name);
  await page.getByTestId('create-task').fill('demo.add');
  await page.getByTestId('create-kind').selectOption('solar');
  await page.getByTestId('create-solar-event').selectOption('sunset');
  await page.getByTestId('create-latitude').fill('91');
  await page.getByTestId('create-longitude').fill('2.3522');
  await expect(page.getByTestId('create-error')).toHaveText('latitude: 91 is out of range (-90 to 90)');
  await expect(page.getByTestId('create-submit')).toBeDisabled();
  await page.getByTestId('create-latitude').fill('48.8566');
  await expect(page.getByTestId('create-description')).toHaveText('Sunset at 48.856600, 2.352200');
  await page.getByTestId('create-submit').click();
  await expect(page.getByTestId('schedule-outcome')).toContainText(name);
  const row = page.locator(`[data-testid="schedule-row"][data-name="${name}"]`);
  await expect(row.getByTestId('schedule-description')).toHaveText('Sunset at 48.856600, 2.352200');

  // The detail page: the event and place as inputs, the next five sunsets in UTC.
  await row.getByRole('link', { name }).click();
  await expect(page.getByTestId('solar-latitude')).toHaveValue('48.856600');
  await expect(page.getByTestId('next-run')).toHaveCount(5);
  for (const run of await page.getByTestId('next-run').all()) {
    await expect(run).toContainText(' UTC ');
  }
  await page.getByTestId('solar-event').selectOption('dusk_civil');
  await page.getByTestId('schedule-save').click();
  await expect(page.getByTestId('schedule-saved')).toContainText('Civil dusk at 48.856600, 2.352200');
  await page.screenshot({ path: 'test-results/periodic-solar.png', fullPage: true });

  await page.getByTestId('schedule-delete').click();
  await page.getByTestId('schedule-delete-confirm').click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Periodic tasks');
  expect(errors).toEqual([]);
});
