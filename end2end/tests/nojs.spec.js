// The same console with JavaScript disabled: pages render on the server and forms post to
// server functions, errors included.
import { test, expect } from '@playwright/test';
import { shot, startCapstan } from './support.js';

const PASSWORD = 'e2e-admin-password-1';

test.describe.serial('without JavaScript', () => {
  let capstan;
  let page;

  test.beforeAll(async ({ browser }) => {
    capstan = await startCapstan({ CAPSTAN_ADMIN_PASSWORD: PASSWORD });
    page = await browser.newPage();
  });

  test.afterAll(async () => {
    await page?.close();
    await capstan?.stop();
  });

  test('sign in, with a wrong password refused first', async () => {
    await page.goto(`${capstan.url}/`);
    await expect(page).toHaveURL(/\/login/);
    await expect(page.locator('.app')).toHaveAttribute('data-hydrated', 'false');
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', 'wrong-password');
    await page.click('button[type=submit]');
    await expect(page.locator('.alert-error')).toContainText('wrong username or password');
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await expect(page).toHaveURL(`${capstan.url}/`);
    await expect(page.locator('.centre-card', { hasText: 'local' })).toBeVisible();
    await shot(page, 'nojs-overview');
  });

  test('add a centre through the form, field errors included', async () => {
    await page.goto(`${capstan.url}/centres/new`);
    await page.fill('input[name="input[name]"]', 'Bad Name');
    await page.fill('input[name="input[connect]"]', '127.0.0.1:2181');
    await page.fill('input[name="input[namespace]"]', 'jobs');
    await page.click('[data-testid=save-centre]');
    await expect(page.locator('.alert-error')).toContainText('lower-case');

    await page.goto(`${capstan.url}/centres/new`);
    await page.fill('input[name="input[name]"]', 'staging');
    await page.fill('input[name="input[connect]"]', '127.0.0.1:2181,127.0.0.2:2181');
    await page.fill('input[name="input[namespace]"]', 'jobs');
    await page.click('[data-testid=save-centre]');
    await expect(page).toHaveURL(`${capstan.url}/centres`);
    await expect(page.locator('tr[data-centre=staging]')).toContainText('127.0.0.1:2181,127.0.0.2:2181');
    await shot(page, 'nojs-centres');
  });

  test('the switcher is plain links', async () => {
    await page.goto(`${capstan.url}/rc/staging`);
    await page.click('.switcher summary');
    await page.click('.switcher a[data-centre=local]');
    await expect(page).toHaveURL(`${capstan.url}/rc/local`);
  });

  test('jobs: pause posts a plain form and the reloaded page shows the state', async () => {
    await page.goto(`${capstan.url}/rc/local/jobs`);
    const row = page.locator('tr[data-job=demo-simple]');
    const status = row.locator('[data-testid=job-status]');
    // SHARDING_FLAG until the first fire shards the job; without JavaScript, reload.
    await expect.poll(async () => {
      await page.reload();
      return status.textContent();
    }, { timeout: 30_000 }).toBe('OK');
    // The server fn answers a plain form post with a redirect back to the page; the
    // click waits for that navigation to start, not to end, so wait for the load before
    // reloading (a reload during it is refused).
    const after = async (action, state) => {
      await row.locator(`button[data-action=${action}]`).click();
      await page.waitForURL(/\/rc\/local\/jobs/, { waitUntil: 'load' });
      await expect.poll(async () => {
        await page.reload();
        return status.textContent();
      }, { timeout: 15_000 }).toBe(state);
    };
    await after('pause', 'PAUSED');
    await after('resume', 'OK');
    await shot(page, 'nojs-jobs');
  });
});
