// An operator's day with jobs, hydrated: the demo jobs on `local`, a trigger whose run
// appears live, pause and resume, a bad cron refused field by field, a server disabled
// and enabled on a real ZooKeeper while two `capstan agent` processes share a job's items,
// and a viewer who sees operations disabled and whom the API refuses.
import { test, expect } from '@playwright/test';
import {
  api, apiToken, hydrated, shot, signIn, startAgent, startCapstan, startZooKeeper,
} from './support.js';

const PASSWORD = 'e2e-admin-password-1';

// Distinct owner IPs in the job page's item table.
async function itemServers(page) {
  return page.locator('[data-testid=items] tbody tr').evaluateAll(
    (rows) => [...new Set(rows.map((r) => r.dataset.server).filter(Boolean))].sort(),
  );
}

test.describe.serial('jobs', () => {
  let capstan;
  let page;
  let token;

  test.beforeAll(async ({ browser }) => {
    capstan = await startCapstan({ CAPSTAN_ADMIN_PASSWORD: PASSWORD });
    token = await apiToken(capstan.url, 'admin', PASSWORD);
    page = await browser.newPage();
    page.on('pageerror', (e) => { throw e; });
    await signIn(page, capstan.url, 'admin', PASSWORD);
  });

  test.afterAll(async () => {
    await page?.close();
    await capstan?.stop();
  });

  test('the demo jobs run on local and the dashboard shows them', async () => {
    await page.goto(`${capstan.url}/rc/local/jobs`);
    await hydrated(page);
    // The demo pipeline is a STREAM job too, as any ElasticJob console would list it.
    // Sharding is lazy (spec §4.3): a fresh job is SHARDING_FLAG until its first fire, and
    // the slowest demo cron fires every 30 s, so each status may take that long to turn.
    for (const job of ['demo-simple', 'demo-dataflow', 'demo-script', 'demo-http', 'sensor-averages']) {
      await expect(page.locator(`tr[data-job=${job}] [data-testid=job-status]`))
        .toHaveText('OK', { timeout: 40_000 });
    }
    await expect(page.getByTestId('live')).toHaveAttribute('data-connected', 'true');
    await shot(page, 'jobs');
    await page.goto(`${capstan.url}/rc/local`);
    await hydrated(page);
    await expect(page.locator('.tile[data-status=OK] strong')).toHaveText('5');
    // The console's scheduler runtime, and the demo pipeline's instance.
    await expect(page.getByTestId('instances-online').locator('strong')).toHaveText('2');
    await shot(page, 'dashboard');
  });

  test('trigger a job and see its run appear live', async () => {
    // A job whose cron fires only in 2099: any run it has comes from the trigger.
    const created = await api(capstan.url, token, 'POST', '/registries/local/jobs', {
      kind: 'SCRIPT', name: 'e2e-once', cron: '0 0 0 1 1 ? 2099', command: 'echo e2e',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await page.goto(`${capstan.url}/rc/local/jobs/e2e-once`);
    await hydrated(page);
    // The console's runtime picks the new job up and registers an instance.
    await expect(page.locator('[data-testid=instances] tbody tr')).toHaveCount(1, { timeout: 30_000 });
    await expect(page.locator('[data-testid=runs] tbody tr')).toHaveCount(0);
    await page.evaluate(() => { window.e2eNoReload = true; });
    await page.click('summary[data-action=trigger]');
    await page.fill('input[name=parameter]', 'from-e2e');
    await page.click('button[data-confirm=trigger]');
    const run = page.locator('[data-testid=runs] tbody tr').first();
    await expect(run).toHaveAttribute('data-state', 'SUCCEEDED', { timeout: 30_000 });
    await expect(page.getByTestId('gantt').locator('.gantt-row')).toHaveCount(1);
    expect(await page.evaluate(() => window.e2eNoReload)).toBe(true);
    await shot(page, 'job-after-trigger');
  });

  test('pause and resume from the jobs page', async () => {
    await page.goto(`${capstan.url}/rc/local/jobs`);
    await hydrated(page);
    const row = page.locator('tr[data-job=demo-simple]');
    await row.locator('button[data-action=pause]').click();
    await expect(row.locator('[data-testid=job-status]')).toHaveText('PAUSED');
    await expect(row.getByTestId('job-reason')).toContainText('paused');
    const listed = await api(capstan.url, token, 'GET', '/registries/local/jobs?status=PAUSED');
    expect(listed.body.items.map((j) => j.name)).toEqual(['demo-simple']);
    await row.locator('button[data-action=resume]').click();
    await expect(row.locator('[data-testid=job-status]')).toHaveText('OK');
  });

  test('a bad cron is refused on its field, a good one saved with its next fires', async () => {
    await page.goto(`${capstan.url}/rc/local/jobs/demo-simple`);
    await hydrated(page);
    await page.fill('[data-testid=cron-input]', '0 0 * * *');
    await page.click('[data-testid=save-config]');
    await expect(page.locator('.field-error[data-field=cron]')).toContainText('6 or 7 fields');
    await shot(page, 'job-bad-cron');
    await page.fill('[data-testid=cron-input]', '0/5 * * * * ?');
    await page.click('[data-testid=save-config]');
    await expect(page.locator('.field-error[data-field=cron]')).toHaveCount(0);
    await expect(page.getByTestId('next-fires').locator('li')).toHaveCount(10);
    const detail = await api(capstan.url, token, 'GET', '/registries/local/jobs/demo-simple');
    expect(detail.body.config.cron).toBe('0/5 * * * * ?');
    // Every operation is in the audit log.
    const audit = await api(capstan.url, token, 'GET', '/audit?action=job.config');
    expect(audit.body.items.map((e) => e.result)).toEqual(expect.arrayContaining(['ok', 'failed']));
  });

  test('a viewer sees the operations disabled and the API refuses them', async ({ browser }) => {
    await page.goto(`${capstan.url}/admin/users`);
    await hydrated(page);
    await page.fill('section.card input[name=username]', 'viewer1');
    await page.fill('section.card input[name=password]', 'viewer-first-password');
    await page.click('section.card button[type=submit]');
    await expect(page.locator('[data-testid=users] tr', { hasText: 'viewer1' })).toBeVisible();

    const context = await browser.newContext();
    const viewer = await context.newPage();
    await signIn(viewer, capstan.url, 'viewer1', 'viewer-first-password');
    await expect(viewer).toHaveURL(/\/account\?first=1/);
    await hydrated(viewer);
    await viewer.fill('input[name=current]', 'viewer-first-password');
    await viewer.fill('input[name=new]', 'viewer-own-password-9');
    await viewer.fill('input[name=confirm]', 'viewer-own-password-9');
    await viewer.click('[data-testid=change-password]');
    await viewer.waitForURL(`${capstan.url}/`);

    await viewer.goto(`${capstan.url}/rc/local/jobs`);
    await hydrated(viewer);
    const row = viewer.locator('tr[data-job=demo-simple]');
    for (const action of ['trigger', 'pause', 'disable', 'shutdown', 'remove']) {
      await expect(row.locator(`button[data-action=${action}]`)).toBeDisabled();
    }
    await expect(viewer.getByTestId('new-job')).toBeDisabled();
    await shot(viewer, 'jobs-viewer');
    await context.close();

    const viewerToken = await apiToken(capstan.url, 'viewer1', 'viewer-own-password-9');
    const refused = await api(capstan.url, viewerToken, 'POST', '/registries/local/jobs/demo-simple/trigger');
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe('forbidden');
    const item = await api(capstan.url, viewerToken, 'POST', '/registries/local/jobs/demo-simple/items/0/disable');
    expect(item.status).toBe(403);
    const read = await api(capstan.url, viewerToken, 'GET', '/registries/local/jobs/demo-simple');
    expect(read.status).toBe(200);
    const audit = await api(capstan.url, token, 'GET', '/audit?action=job.trigger&result=denied');
    expect(audit.body.items.some((e) => e.actor === 'viewer1')).toBe(true);
  });
});

test.describe.serial('servers on ZooKeeper', () => {
  let zk;
  let capstan;
  let agents = [];
  let token;

  test.beforeAll(async () => {
    zk = await startZooKeeper();
    capstan = await startCapstan({ CAPSTAN_ADMIN_PASSWORD: PASSWORD, CAPSTAN_NO_DEMO: 'true' });
    token = await apiToken(capstan.url, 'admin', PASSWORD);
    const centre = await api(capstan.url, token, 'POST', '/registries', {
      name: 'zk-e2e', kind: 'zookeeper', connect: zk.connect, namespace: 'e2e-jobs',
    });
    expect(centre.status, JSON.stringify(centre.body)).toBe(201);
    const job = await api(capstan.url, token, 'POST', '/registries/zk-e2e/jobs', {
      kind: 'SCRIPT', name: 'e2e-spread', cron: '0/2 * * * * ?', sharding_total_count: 4, command: 'true',
    });
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    agents = [
      await startAgent(zk.connect, 'e2e-jobs', '127.0.0.2'),
      await startAgent(zk.connect, 'e2e-jobs', '127.0.0.3'),
    ];
  });

  test.afterAll(async () => {
    for (const a of agents) await a.stop();
    await capstan?.stop();
    await zk?.stop();
  });

  test('disable and enable a server and see the items move', async ({ browser }) => {
    // Two tabs of one signed-in browser.
    const context = await browser.newContext();
    const jobPage = await context.newPage();
    jobPage.on('pageerror', (e) => { throw e; });
    await signIn(jobPage, capstan.url, 'admin', PASSWORD);
    await jobPage.goto(`${capstan.url}/rc/zk-e2e/jobs/e2e-spread`);
    await hydrated(jobPage);
    await expect.poll(() => itemServers(jobPage), { timeout: 30_000 }).toEqual(['127.0.0.2', '127.0.0.3']);
    await shot(jobPage, 'job-two-servers');

    const servers = await context.newPage();
    await servers.goto(`${capstan.url}/rc/zk-e2e/servers`);
    await hydrated(servers);
    const row = servers.locator('tr[data-server="127.0.0.3"]');
    await row.locator('summary[data-action=disable]').click();
    await row.locator('button[data-confirm=disable]').click();
    await expect(row.locator('button[data-action=enable]')).toBeVisible();
    await shot(servers, 'servers-disabled');

    // The other tab was not touched: the items move there live, at the next fire.
    await expect.poll(() => itemServers(jobPage), { timeout: 30_000 }).toEqual(['127.0.0.2']);

    await row.locator('button[data-action=enable]').click();
    await expect(row.locator('summary[data-action=disable]')).toBeVisible();
    await expect.poll(() => itemServers(jobPage), { timeout: 30_000 }).toEqual(['127.0.0.2', '127.0.0.3']);
    await context.close();
  });
});
