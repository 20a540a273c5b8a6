import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttp, type HttpServer } from '../../src/joystick/http/server.js';
import { Metrics } from '../../src/joystick/metrics.js';
import { openSqlite } from '../../src/joystick/store/db.js';
import { JobStore } from '../../src/joystick/store/job-store.js';
import { silentLogger } from '../../src/shared/log.js';
import { asRecord, type ReleaseRecord } from '../../src/plume/record.js';

const CHROMIUM = '/usr/bin/chromium';
const REPO = new URL('../../', import.meta.url).pathname;
const regions = ['us-east-1', 'eu-west-1', 'ap-south-1'];

/** A record as the first versions wrote it (one AWS target), read the way stored job records are. */
function record(build: string, failing: string[]): ReleaseRecord {
  const targets = regions.flatMap((location) =>
    ['gp3', 'gp2'].map((variant) => ({ location, variant, name: `${build}-hvm-${location}-${variant}-0` })),
  );
  const ok = targets.filter((t) => !failing.includes(t.location));
  return asRecord({
    schema: 'plume.release/v1',
    key: `fedora/cloud/${build}`,
    status: failing.length ? 'partial' : 'complete',
    mode: 'release',
    system: 'fedora',
    channel: 'cloud',
    arch: 'x86_64',
    version: '41',
    build,
    provider: 'aws',
    primaryLocation: 'us-east-1',
    visibility: { public: true, accounts: [] },
    source: { url: 'https://kojipkgs.fedoraproject.org/x.raw.xz' },
    images: ok.map((t, i) => ({ ...t, id: `ami-${String(i).padStart(17, '0')}` })),
    problems: targets
      .filter((t) => failing.includes(t.location))
      .map((t) => ({
        location: t.location,
        variant: t.variant,
        kind: 'missing' as const,
        detail: 'CopyImage in ap-south-1 failed: UnauthorizedOperation',
      })),
    timings: {},
    startedAt: '2024-10-20T10:00:00Z',
    finishedAt: '2024-10-20T10:20:00Z',
    plan: { targets, aws: { architecture: 'x86_64' }, provider: 'aws' },
  })!;
}

let store: JobStore;
let http: HttpServer;
let browser: Browser;

beforeAll(async () => {
  store = await JobStore.open(openSqlite(join(mkdtempSync(join(tmpdir(), 'joystick-status-')), 'j.db')));
  // A published compose, a partial one (ap-south-1 refused), and one that could not be read.
  await store.recordCompose(
    {
      id: 'Fedora-Cloud-41-20241020.0',
      location: 'https://kojipkgs.fedoraproject.org/compose/cloud/Fedora-Cloud-41-20241020.0/compose',
      status: 'FINISHED',
    },
    'm1',
  );
  await store.recordCompose(
    {
      id: 'Fedora-Cloud-41-20241027.0',
      location: 'https://kojipkgs.fedoraproject.org/compose/cloud/Fedora-Cloud-41-20241027.0/compose',
      status: 'FINISHED',
    },
    'm2',
    Date.now() + 1,
  );
  await store.recordCompose(
    {
      id: 'Fedora-Cloud-41-20241103.0',
      location: 'https://kojipkgs.fedoraproject.org/compose/cloud/Fedora-Cloud-41-20241103.0/compose',
      status: 'FINISHED',
    },
    'm3',
    Date.now() + 2,
  );
  for (const [id, build, failing] of [
    ['Fedora-Cloud-41-20241020.0', 'Fedora-Cloud-Base-41-20241020.0.x86_64', []],
    ['Fedora-Cloud-41-20241027.0', 'Fedora-Cloud-Base-41-20241027.0.x86_64', ['ap-south-1']],
  ] as const) {
    const c = await store.claimCompose('t', 60_000, Date.now() + 10);
    expect(c?.composeId).toBe(id);
    await store.planCompose(
      id,
      't',
      'cloud',
      [
        {
          id: `${id}/x86_64`,
          request: { system: 'fedora', channel: 'cloud', arch: 'x86_64' },
          channel: 'cloud',
          arch: 'x86_64',
          imageType: 'Cloud-Base',
          command: 'plume release ...',
        },
      ],
      [],
    );
    const job = await store.claimJob('t', 60_000, Date.now() + 20);
    const r = record(build, [...failing]);
    await store.finishJob(
      job!.id,
      't',
      { state: r.status === 'complete' ? 'complete' : 'partial', record: r },
      [],
    );
  }
  const broken = await store.claimCompose('t', 60_000, Date.now() + 30);
  await store.closeCompose(
    broken!.composeId,
    't',
    'failed',
    'not found (HTTP 404): .../metadata/images.json',
    'cloud',
    [],
  );
  http = await startHttp('127.0.0.1:0', {
    store,
    metrics: new Metrics({ defaults: false }),
    log: silentLogger(),
    busConnected: () => true,
  });
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (or: apt-get install chromium)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await http?.close();
  await store?.close();
});

describe('the status page in headless Chromium', () => {
  it('shows each compose, its region x volume type grid, publicness and failures', async () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`${http.url}/status`);
    expect(await page.title()).toBe('joystick: published images');

    const published = page.locator('[data-compose="Fedora-Cloud-41-20241020.0"]');
    await expect.poll(() => published.getAttribute('data-status')).toBe('published');
    // Each job names its provider (a job stored without one predates providers: AWS).
    expect(await published.locator('section.job h3 .provider').allTextContents()).toEqual(['aws']);
    const grid = published.locator('table.grid');
    expect(await grid.locator('thead th').allTextContents()).toEqual(['region', 'gp3', 'gp2']);
    expect(await grid.locator('tbody tr').count()).toBe(3);
    expect(await grid.locator('td.published').count()).toBe(6);
    expect(await grid.locator('tbody tr:has(th:text("eu-west-1")) td').first().textContent()).toMatch(
      /^ami-0+\d+ ●$/,
    );

    const partial = page.locator('[data-compose="Fedora-Cloud-41-20241027.0"]');
    expect(await partial.getAttribute('data-status')).toBe('partial');
    expect(await partial.locator('td.failed').count()).toBe(2);
    expect(await partial.locator('.failures li').first().textContent()).toBe(
      'ap-south-1 gp3: missing: CopyImage in ap-south-1 failed: UnauthorizedOperation',
    );

    const failed = page.locator('[data-compose="Fedora-Cloud-41-20241103.0"]');
    expect(await failed.getAttribute('data-status')).toBe('failed');
    expect(await failed.locator('.error').textContent()).toContain('images.json');

    // The JSON twin says the same.
    const json = (await (await page.request.get(`${http.url}/status.json`)).json()) as {
      composes: { composeId: string; status: string }[];
    };
    expect(json.composes.map((c) => [c.composeId, c.status])).toEqual([
      ['Fedora-Cloud-41-20241103.0', 'failed'],
      ['Fedora-Cloud-41-20241027.0', 'partial'],
      ['Fedora-Cloud-41-20241020.0', 'published'],
    ]);
    // docs/status-page.png is refreshed on request, so test runs leave the tree as they found it.
    const shot = process.env.PLUME_UPDATE_SCREENSHOTS
      ? join(REPO, 'docs', 'status-page.png')
      : join(tmpdir(), `status-page-${process.pid}.png`);
    const png = await page.screenshot({ path: shot, fullPage: true });
    expect(png.subarray(1, 4).toString()).toBe('PNG');
  });

  it('serves health, readiness and metrics', async () => {
    const page = await browser.newPage();
    expect((await page.goto(`${http.url}/healthz`))?.status()).toBe(200);
    expect((await page.goto(`${http.url}/readyz`))?.status()).toBe(200);
    const metrics = await (await page.request.get(`${http.url}/metrics`)).text();
    expect(metrics).toContain('joystick_jobs{state="partial"} 1');
    expect(metrics).toContain('joystick_jobs{state="complete"} 1');
    // From the database (no job ran in this process): what the no-publish alert watches survives restarts.
    expect(metrics).toMatch(
      /^joystick_last_publish_timestamp_seconds\{channel="cloud",provider="aws"\} \d+/m,
    );
    // No job is running or waiting: no series, so the stuck-job alerts stay quiet.
    expect(metrics).not.toMatch(/^joystick_job_oldest_timestamp_seconds\{/m);
  });
});
