// Starts the processes a browser test needs: a real ZooKeeper (Debian's package) and the
// capstan binary, each on 127.0.0.1 and a free port, each stopped by its own PID.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const SHOTS = path.resolve('test-results/screenshots');

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function fourLetter(port, cmd) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write(cmd));
    let out = '';
    sock.on('data', (d) => { out += d; });
    sock.on('end', () => resolve(out));
    sock.on('error', () => resolve(''));
    sock.setTimeout(2000, () => { sock.destroy(); resolve(out); });
  });
}

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function stopper(child, dir) {
  return async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([
        new Promise((r) => child.once('exit', r)),
        new Promise((r) => setTimeout(r, 5000)),
      ]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  };
}

export async function startZooKeeper() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capstan-e2e-zk-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'zoo.cfg'), [
    'tickTime=2000', `dataDir=${dir}/data`, `clientPort=${port}`, 'clientPortAddress=127.0.0.1',
    'admin.enableServer=false', '4lw.commands.whitelist=ruok,srvr,stat,mntr,conf', 'maxClientCnxns=0',
  ].join('\n'));
  const log = fs.openSync(path.join(dir, 'zk.log'), 'w');
  const child = spawn('java', [
    '-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1',
    '-cp', '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar',
    'org.apache.zookeeper.server.ZooKeeperServerMain', path.join(dir, 'zoo.cfg'),
  ], { stdio: ['ignore', log, log] });
  await waitFor('ZooKeeper', async () => (await fourLetter(port, 'srvr')).includes('Mode: standalone'), 60_000);
  return { port, connect: `127.0.0.1:${port}`, stop: stopper(child, dir) };
}

const ANSI = /\x1b\[[0-9;]*m/g;

export async function startCapstan(env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capstan-e2e-'));
  const port = await freePort();
  let output = '';
  const child = spawn(process.env.CAPSTAN_BIN, ['serve'], {
    env: {
      ...process.env,
      CAPSTAN_BIND: `127.0.0.1:${port}`,
      CAPSTAN_DATA_DIR: path.join(dir, 'data'),
      CAPSTAN_SITE_ROOT: process.env.CAPSTAN_SITE_ROOT,
      CAPSTAN_LOG: 'info',
      CAPSTAN_PROBE_TIMEOUT_MS: '3000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('capstan', async () => {
    if (child.exitCode !== null) throw new Error(`capstan exited:\n${output}`);
    try { return (await fetch(`${url}/healthz`)).ok; } catch { return false; }
  }, 60_000);
  const generated = output.replace(ANSI, '').match(/generated password\s+(\S+)/);
  return { url, password: generated ? generated[1] : null, output: () => output, stop: stopper(child, dir) };
}

export async function hydrated(page) {
  await page.locator('.app[data-hydrated="true"]').first().waitFor({ timeout: 30_000 });
}

export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// A capstan subcommand as a process (logging at info), ready once its output holds
// `ready`; stopping it removes `dir`, if given.
async function startWorker(what, args, ready, dir) {
  let output = '';
  const child = spawn(process.env.CAPSTAN_BIN, args, {
    env: { ...process.env, CAPSTAN_LOG: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  await waitFor(what, async () => {
    if (child.exitCode !== null) throw new Error(`${what} exited:\n${output}`);
    return output.includes(ready);
  }, 30_000);
  return { output: () => output, stop: stopper(child, dir) };
}

// A `capstan agent` on a ZooKeeper namespace, claiming `ip` as its server address.
export async function startAgent(connect, namespace, ip) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capstan-e2e-agent-'));
  return startWorker('agent', [
    'agent', '--registry', `zookeeper://${connect}/${namespace}`, '--ip', ip,
    '--data-dir', dir, '--session-timeout-ms', '6000',
  ], 'agent started', dir);
}

// `capstan pipeline start SPEC` registered on a ZooKeeper namespace as server `ip`, its
// checkpoints in `dir` (one directory for the processes of one pipeline, as on shared
// storage, left for the caller to remove). Ready once registered, running the pipeline or
// standing by.
export async function startPipelineWorker(connect, namespace, ip, spec, dir) {
  return startWorker('pipeline worker', [
    'pipeline', 'start', spec, '--data', dir, '--registry', `zookeeper://${connect}/${namespace}`,
    '--ip', ip, '--session-timeout-ms', '6000', '--status-every', '0',
  ], 'registered as instance', null);
}

// Signs in through the login page and waits for the app to hydrate.
export async function signIn(page, url, username, password) {
  await page.goto(`${url}/login`);
  await hydrated(page);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

// A bearer token for the REST API.
export async function apiToken(url, username, password) {
  const res = await fetch(`${url}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`login ${res.status}: ${await res.text()}`);
  return (await res.json()).token;
}

// Calls the REST API; returns { status, body }.
export async function api(url, token, method, route, body) {
  const res = await fetch(`${url}/api/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: parsed };
}
