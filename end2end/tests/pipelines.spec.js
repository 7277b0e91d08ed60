// The demo stream pipeline on `local`, hydrated: it runs and its numbers move, the page
// draws the DAG with numbers on each vertex, and pause, resume and restart from the last
// checkpoint work from the page and show in its state.
import { test, expect } from '@playwright/test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  api, apiToken, hydrated, shot, signIn, startCapstan, startPipelineWorker, startZooKeeper,
} from './support.js';

const PASSWORD = 'e2e-admin-password-1';

test.describe.serial('pipelines', () => {
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

  test('the demo pipeline runs and the list shows its throughput', async () => {
    await page.goto(`${capstan.url}/rc/local/pipelines`);
    await hydrated(page);
    const row = page.locator('tr[data-pipeline=sensor-averages]');
    await expect(row.getByTestId('pipeline-state')).toHaveText('RUNNING');
    // The generator makes 2000 readings a second; the page refreshes every 2 s.
    await expect(row.getByTestId('in-rate')).toHaveText(/k\/s$/, { timeout: 20_000 });
    await shot(page, 'pipelines');
  });

  test('the pipeline page draws the DAG, charts, checkpoints and results', async () => {
    await page.locator('tr[data-pipeline=sensor-averages] a').click();
    await page.waitForURL(/\/pipelines\/sensor-averages$/);
    await hydrated(page);
    const dag = page.getByTestId('dag');
    await expect(dag.locator('g[data-vertex]')).toHaveCount(3);
    await expect(dag.locator('g[data-vertex=aggregate]')).toContainText('aggregate ×4');
    await expect(dag.locator('g[data-vertex=readings]')).toContainText(/in \d/);
    await expect(page.getByTestId('checkpoints').locator('tbody tr').first()).toBeVisible({ timeout: 20_000 });
    await expect(page.getByTestId('results')).toContainText('sensor-');
    await shot(page, 'pipeline');
  });

  test('pause, resume and restart from the page', async () => {
    await page.click('button[data-action=pause]');
    await expect(page.getByTestId('pipeline-state').first()).toHaveText('PAUSED');
    // Paused sources read nothing: the count stops moving.
    const read = async () => {
      const r = await api(capstan.url, token, 'GET', '/registries/local/pipelines/sensor-averages');
      return r.body.vertices[0].records_in;
    };
    await page.waitForTimeout(1500);
    const a = await read();
    await page.waitForTimeout(1500);
    expect(await read()).toBe(a);
    await page.click('button[data-action=resume]');
    await expect(page.getByTestId('pipeline-state').first()).toHaveText('RUNNING');
    await page.click('button[data-action=restart]');
    await expect(page.getByTestId('restarts')).toHaveAttribute('data-restarts', '1');
    await expect(page.getByTestId('pipeline-state').first()).toHaveText('RUNNING');
    // It resumed from a checkpoint and keeps reading.
    const before = await read();
    await expect.poll(read, { timeout: 10_000 }).toBeGreaterThan(before);
    // The pipelines route acts on stream pipelines only, never on a cron job.
    const wrong = await api(capstan.url, token, 'POST', '/registries/local/pipelines/demo-simple/pause');
    expect(wrong.status).toBe(404);
    // Every operation is audited.
    const audit = await api(capstan.url, token, 'GET', '/audit?action=pipeline.restart');
    expect(JSON.stringify(audit.body)).toContain('pipeline.restart');
  });
});

// A pipeline run by `capstan pipeline start --registry` processes on a ZooKeeper centre,
// not by the console: the list names the process that runs it, a disabled server hands it
// to the other process, its page draws what it published, and with both processes gone
// it is OFFLINE.
test.describe.serial('pipelines run by other processes', () => {
  let zk;
  let capstan;
  let token;
  let dir;
  let workers = [];

  test.beforeAll(async () => {
    zk = await startZooKeeper();
    capstan = await startCapstan({ CAPSTAN_ADMIN_PASSWORD: PASSWORD, CAPSTAN_NO_DEMO: 'true' });
    token = await apiToken(capstan.url, 'admin', PASSWORD);
    const centre = await api(capstan.url, token, 'POST', '/registries', {
      name: 'zk-streams', kind: 'zookeeper', connect: zk.connect, namespace: 'e2e-streams',
    });
    expect(centre.status, JSON.stringify(centre.body)).toBe(201);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capstan-e2e-stream-'));
    const spec = path.join(dir, 'stream.yaml');
    fs.writeFileSync(spec, [
      'name: e2e-stream',
      'sources: [{name: readings}]',
      'steps:',
      '  - key_by: sensor',
      '  - aggregate: {window: {tumbling: 1000}, ops: {n: count}}',
      'run:',
      '  partitions: 2',
      '  checkpoint_interval_ms: 500',
      '  inputs:',
      '    readings: {generator: {kind: sensors, keys: 10, rate: 2000}}',
      '  sink: memory',
    ].join('\n'));
    const data = path.join(dir, 'shared');
    workers.push(await startPipelineWorker(zk.connect, 'e2e-streams', '127.0.0.4', spec, data));
    expect(workers[0].output()).toContain('running it');
    workers.push(await startPipelineWorker(zk.connect, 'e2e-streams', '127.0.0.5', spec, data));
    expect(workers[1].output()).toContain('standing by');
  });

  test.afterAll(async () => {
    for (const w of workers) await w.stop();
    await capstan?.stop();
    await zk?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('listed with its runner, handed over from a disabled server, OFFLINE once gone', async ({ page }) => {
    page.on('pageerror', (e) => { throw e; });
    await signIn(page, capstan.url, 'admin', PASSWORD);
    await page.goto(`${capstan.url}/rc/zk-streams/pipelines`);
    await hydrated(page);
    const row = page.locator('tr[data-pipeline=e2e-stream]');
    await expect(row.getByTestId('pipeline-state')).toHaveText('RUNNING', { timeout: 30_000 });
    await expect(row.getByTestId('runner')).toContainText('127.0.0.4@-@');
    await shot(page, 'pipelines-other-process');

    const disabled = await api(capstan.url, token, 'POST', '/registries/zk-streams/servers/127.0.0.4/disable');
    expect(disabled.status, JSON.stringify(disabled.body)).toBeLessThan(300);
    // The page was not reloaded: the other process takes over and publishes.
    await expect(row.getByTestId('runner')).toContainText('127.0.0.5@-@', { timeout: 30_000 });
    await expect(row.getByTestId('pipeline-state')).toHaveText('RUNNING', { timeout: 30_000 });

    await row.locator('a').click();
    await page.waitForURL(/\/pipelines\/e2e-stream$/);
    await hydrated(page);
    await expect(page.getByTestId('runner')).toContainText('127.0.0.5@-@');
    await expect(page.locator('svg.dag')).toBeVisible();
    await shot(page, 'pipeline-other-process');

    for (const w of workers) await w.stop();
    workers = [];
    await page.goto(`${capstan.url}/rc/zk-streams/pipelines`);
    await hydrated(page);
    await expect(row.getByTestId('pipeline-state')).toHaveText('OFFLINE', { timeout: 30_000 });
  });
});
