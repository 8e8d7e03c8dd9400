// Browser check of a team's own app (examples/mount-dashboard, built outside the workspace by
// scripts/outside-crate.sh, which starts it and passes its URL in ADOPTER_BASE_URL).
import { defineConfig } from '@playwright/test';
import base from './playwright.config';

export default defineConfig({
  ...base,
  testDir: './adopter',
  outputDir: './test-results/adopter',
  use: { ...base.use, baseURL: process.env.ADOPTER_BASE_URL ?? 'http://127.0.0.1:8000' },
});
