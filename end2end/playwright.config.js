// Browser tests: Playwright drives Debian's Chromium (never a downloaded browser).
import { defineConfig } from '@playwright/test';

const chromium = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage',
  ],
};

export default defineConfig({
  testDir: './tests',
  timeout: 90_000,
  expect: { timeout: 15_000 },
  workers: 1,
  fullyParallel: false,
  reporter: [['list']],
  outputDir: './test-results',
  use: { launchOptions: chromium, actionTimeout: 15_000, navigationTimeout: 30_000 },
  projects: [
    { name: 'hydrated', testMatch: /(console|jobs|pipelines)\.spec\.js/, use: { javaScriptEnabled: true } },
    { name: 'no-js', testMatch: /nojs\.spec\.js/, use: { javaScriptEnabled: false } },
  ],
});
