// The first-run flow of an operator, hydrated: sign in with the generated password,
// change it, add a real ZooKeeper centre, test it, switch centres, read the audit log,
// switch language and theme. A screenshot of every page is kept in test-results/.
import { test, expect } from '@playwright/test';
import { freePort, hydrated, shot, startCapstan, startZooKeeper } from './support.js';

const NEW_PASSWORD = 'a-much-better-password-42';

test.describe.serial('first run', () => {
  let zk;
  let capstan;
  let page;

  test.beforeAll(async ({ browser }) => {
    zk = await startZooKeeper();
    capstan = await startCapstan();
    expect(capstan.password, capstan.output()).toBeTruthy();
    page = await browser.newPage();
    page.on('pageerror', (e) => { throw e; });
  });

  test.afterAll(async () => {
    await page?.close();
    await capstan?.stop();
    await zk?.stop();
  });

  test('sign in with the generated password and change it', async () => {
    await page.goto(`${capstan.url}/rc/local`);
    await expect(page).toHaveURL(/\/login\?next=\/rc\/local/);
    await hydrated(page);
    await shot(page, 'login');

    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', 'not-the-password');
    await page.click('button[type=submit]');
    await expect(page.locator('.alert-error')).toContainText('wrong username or password');

    await page.fill('input[name=password]', capstan.password);
    await page.click('button[type=submit]');
    await expect(page).toHaveURL(/\/account\?first=1/);
    await expect(page.getByTestId('must-change')).toBeVisible();
    await hydrated(page);
    await shot(page, 'account-first-login');

    // Every other page is refused until the password is changed.
    await page.goto(`${capstan.url}/centres`);
    await expect(page).toHaveURL(/\/account\?first=1/);
    await hydrated(page);

    await page.fill('input[name=current]', capstan.password);
    // Long enough for the browser's own check, refused by the server's rules.
    await page.fill('input[name=new]', 'aaaaaaaaaaaa');
    await page.fill('input[name=confirm]', 'aaaaaaaaaaaa');
    await page.click('[data-testid=change-password]');
    await expect(page.locator('.field-error[data-field=new]')).toContainText('more than one distinct');

    await page.fill('input[name=new]', NEW_PASSWORD);
    await page.fill('input[name=confirm]', NEW_PASSWORD);
    await page.click('[data-testid=change-password]');
    await expect(page).toHaveURL(`${capstan.url}/`);
    await expect(page.locator('.centre-card', { hasText: 'local' })).toBeVisible();
    await hydrated(page);
    await shot(page, 'overview');
  });

  test('add a ZooKeeper centre, with bad input refused first', async () => {
    await page.goto(`${capstan.url}/centres/new`);
    await hydrated(page);
    await page.fill('input[name="input[name]"]', 'zk-e2e');
    await page.fill('input[name="input[connect]"]', 'zk1:notaport');
    await page.fill('input[name="input[namespace]"]', 'capstan-e2e');
    await page.click('[data-testid=save-centre]');
    await expect(page.locator('.field-error[data-field=connect]')).toContainText('not a port');
    await shot(page, 'centre-form-errors');

    await page.fill('input[name="input[name]"]', 'local');
    await page.fill('input[name="input[connect]"]', zk.connect);
    await page.click('[data-testid=save-centre]');
    await expect(page.locator('.alert-error')).toContainText('already exists');

    await page.fill('input[name="input[name]"]', 'zk-e2e');
    await page.check('input[name="input[production]"]');
    await page.locator('input[name="input[color]"]').fill('#b91c1c');
    await page.click('[data-testid=save-centre]');
    await expect(page).toHaveURL(`${capstan.url}/centres`);
    const row = page.locator('tr[data-centre=zk-e2e]');
    await expect(row).toContainText(zk.connect);
    // The switcher knows the new centre without a reload.
    await expect(page.locator('.switcher a[data-centre=zk-e2e]')).toHaveCount(1);
    await hydrated(page);
    await shot(page, 'centres');
  });

  test('test the connection of a real and of an unreachable ZooKeeper', async () => {
    await page.goto(`${capstan.url}/rc/zk-e2e`);
    await hydrated(page);
    await page.click('[data-testid=test-connection]');
    await expect(page.getByTestId('probe-ok')).toContainText('Connected');
    await expect(page.locator('.prod-banner')).toContainText('zk-e2e');
    await shot(page, 'centre-tested');

    const deadPort = await freePort();
    const res = await page.request.post(`${capstan.url}/api/v1/registries`, {
      data: { name: 'zk-dead', kind: 'zookeeper', connect: `127.0.0.1:${deadPort}`, namespace: 'x' },
    });
    expect(res.status()).toBe(201);
    await page.goto(`${capstan.url}/rc/zk-dead?test=1`);
    // The first error is the connection test's; the dashboard below says the same.
    await expect(page.locator('.alert-error').first()).toContainText('no ZooKeeper server answered');
  });

  test('switch centres through the URL-driven switcher', async () => {
    await page.goto(`${capstan.url}/rc/zk-e2e`);
    await hydrated(page);
    await expect(page.getByTestId('current-centre')).toHaveText('zk-e2e');
    await page.click('.switcher summary');
    await page.click('.switcher a[data-centre=local]');
    await expect(page).toHaveURL(`${capstan.url}/rc/local`);
    await expect(page.getByTestId('current-centre')).toHaveText('local');
    await expect(page.locator('.prod-banner')).toHaveCount(0);
    // The embedded centre answers from the console's own registry store.
    await page.click('[data-testid=test-connection]');
    await expect(page.getByTestId('probe-ok')).toContainText('Connected');
    await shot(page, 'centre-local');
  });

  test('unknown centre in the URL is a clear 404', async () => {
    const res = await page.goto(`${capstan.url}/rc/no-such-centre`);
    expect(res.status()).toBe(404);
    await expect(page.locator('.alert-error').first()).toContainText('no registry centre named');
  });

  test('the users page lists the admin', async () => {
    await page.goto(`${capstan.url}/admin/users`);
    await hydrated(page);
    await expect(page.locator('tr[data-user=admin]')).toBeVisible();
    await shot(page, 'users');
  });

  test('the audit log shows what happened', async () => {
    await page.goto(`${capstan.url}/admin/audit`);
    await hydrated(page);
    const audit = page.getByTestId('audit');
    await expect(audit.locator('tr[data-action=login][data-result=denied]')).toHaveCount(1);
    await expect(audit.locator('tr[data-action=login][data-result=ok]')).toHaveCount(1);
    await expect(audit.locator('tr[data-action="user.password"][data-result=ok]')).toHaveCount(1);
    await expect(audit.locator('tr[data-action="centre.create"][data-result=ok]')).toHaveCount(2);
    await expect(audit.locator('tr[data-action="centre.create"][data-result=failed]')).toHaveCount(2);
    await shot(page, 'audit');

    await page.selectOption('select[name=result]', 'denied');
    await page.click('.filters button[type=submit]');
    await expect(page).toHaveURL(/result=denied/);
    await expect(audit.locator('tbody tr')).toHaveCount(1);
  });

  test('switch language and theme, remembered per user', async () => {
    await page.goto(`${capstan.url}/account`);
    await hydrated(page);
    await page.selectOption('[data-testid=lang]', 'zh-CN');
    await page.selectOption('[data-testid=theme]', 'dark');
    await page.click('[data-testid=save-preferences]');
    await expect(page.locator('.topbar nav')).toContainText('注册中心');
    await expect(page.locator('.app')).toHaveAttribute('data-theme', 'dark');
    await shot(page, 'account-zh-dark');

    // Remembered: a fresh page load renders Chinese and dark on the server.
    await page.goto(`${capstan.url}/centres`);
    await expect(page.locator('h1')).toHaveText('注册中心');
    await expect(page.locator('.app')).toHaveAttribute('data-theme', 'dark');
    await hydrated(page);
    await shot(page, 'centres-zh-dark');
  });
});
