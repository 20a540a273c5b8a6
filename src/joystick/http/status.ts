import type { ComposeRow, JobRow, JobStore } from '../store/job-store.js';
import { LifecycleStore } from '../store/lifecycle-store.js';

export interface TargetCell {
  id?: string;
  state: 'published' | 'ready' | 'failed' | 'missing' | 'pending';
  public: boolean;
  detail?: string;
}

export interface JobStatus {
  id: string;
  state: JobRow['state'];
  channel: string;
  /** The provider the job publishes to (aws, gcp, azure): one job per compose, image and provider. */
  provider: string;
  arch: string;
  imageType?: string;
  attempts: number;
  build?: string;
  step?: string;
  command?: string;
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  regions: string[];
  variants: string[];
  /** region → variant → cell. */
  grid: Record<string, Record<string, TargetCell>>;
  failures: { region: string; variant: string; reason: string }[];
}

export interface ComposeStatus {
  composeId: string;
  status: string;
  channel?: string;
  location: string;
  receivedAt: string;
  error?: string;
  /** Seconds a replica has been reading the compose's metadata, while it does. */
  readingSeconds?: number;
  /** Read for longer than `compose_stall_seconds`. */
  stalled?: boolean;
  jobs: JobStatus[];
}

/** What the image lifecycle keeps public, and each pruned stream's last run. */
export interface LifecycleStatus {
  publicImages: { provider: string; channel: string; arch: string; images: number }[];
  streams: { stream: string; lastRunAt?: string; nextDueAt: string; error?: string }[];
}

export interface StatusModel {
  generatedAt: string;
  composes: ComposeStatus[];
  lifecycle: LifecycleStatus;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** One job as the status page shows it: the plan's grid filled from the record, or from live progress. */
export function jobStatus(job: JobRow): JobStatus {
  const record = job.record;
  const targets = record ? Object.values(record.targets) : [];
  const planned = targets.flatMap((t) => t.plan.images);
  const regions = [...new Set(planned.map((t) => t.location))].sort();
  const variants = [...new Set(planned.map((t) => t.variant))];
  const grid: JobStatus['grid'] = {};
  for (const t of planned) (grid[t.location] ??= {})[t.variant] = { state: 'pending', public: false };
  for (const [key, p] of Object.entries(job.progress?.targets ?? {})) {
    const [region, variant] = key.split('/') as [string, string];
    if (!regions.includes(region)) regions.push(region);
    if (!variants.includes(variant)) variants.push(variant);
    (grid[region] ??= {})[variant] = {
      id: p.id,
      state: p.state,
      public: p.state === 'published',
      detail: p.error,
    };
  }
  for (const target of targets) {
    const published =
      target.mode === 'release' && (target.visibility.public || target.visibility.accounts.length > 0);
    for (const image of target.images)
      (grid[image.location] ??= {})[image.variant] = {
        id: image.id,
        state: published ? 'published' : 'ready',
        public: published,
      };
  }
  const failures = targets.flatMap((t) =>
    t.problems.map((p) => ({ region: p.location, variant: p.variant, reason: `${p.kind}: ${p.detail}` })),
  );
  for (const f of failures)
    (grid[f.region] ??= {})[f.variant] = { state: 'failed', public: false, detail: f.reason };
  return {
    id: job.id,
    state: job.state,
    channel: job.channel,
    provider: job.provider,
    arch: job.arch,
    imageType: job.imageType,
    attempts: job.attempts,
    build: record?.build,
    step: job.state === 'running' ? job.progress?.step : undefined,
    command: job.command,
    error: job.error,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    regions: regions.sort(),
    variants,
    grid,
    failures,
  };
}

export async function statusModel(
  store: JobStore,
  limit = 30,
  opts: { stallSeconds?: number; now?: number } = {},
): Promise<StatusModel> {
  const composes: ComposeRow[] = await store.recentComposes(limit);
  const jobs = await store.jobs({ composeIds: composes.map((c) => c.composeId) });
  const now = opts.now ?? Date.now();
  const stallSeconds = opts.stallSeconds ?? 120;
  const lifecycle = new LifecycleStore(store);
  return {
    generatedAt: new Date(now).toISOString(),
    lifecycle: {
      publicImages: await lifecycle.publicImages(),
      streams: (await lifecycle.streams()).map((s) => ({
        stream: s.stream,
        lastRunAt: iso(s.lastRunAt),
        nextDueAt: new Date(s.dueAt).toISOString(),
        ...(s.error ? { error: s.error } : {}),
      })),
    },
    composes: composes.map((c) => ({
      ...readingState(c, now, stallSeconds),
      composeId: c.composeId,
      status: composeState(
        c,
        jobs.filter((j) => j.composeId === c.composeId),
      ),
      channel: c.channel,
      location: c.event.location,
      receivedAt: new Date(c.receivedAt).toISOString(),
      error: c.error,
      jobs: jobs.filter((j) => j.composeId === c.composeId).map(jobStatus),
    })),
  };
}

/** Whether a compose is being read, for how long, and whether that is a stall. Pure. */
export function readingState(
  c: Pick<ComposeRow, 'status' | 'leaseUntil' | 'updatedAt'>,
  now: number,
  stallSeconds: number,
): { readingSeconds?: number; stalled?: boolean } {
  if (c.status !== 'received' || c.leaseUntil === undefined || c.leaseUntil < now) return {};
  const readingSeconds = Math.max(0, Math.round((now - c.updatedAt) / 1000));
  return { readingSeconds, stalled: readingSeconds >= stallSeconds };
}

/** Only web links are rendered as links: a location from the bus could say `javascript:`. Pure. */
export function safeHref(location: string): string | undefined {
  try {
    const url = new URL(location);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** A compose's overall state, from its own and its jobs'. */
export function composeState(c: ComposeRow, jobs: JobRow[]): string {
  if (c.status !== 'planned') return c.status;
  if (jobs.some((j) => j.state === 'running' || j.state === 'queued')) return 'publishing';
  if (jobs.every((j) => j.state === 'complete')) return 'published';
  if (jobs.some((j) => j.state === 'failed')) return 'failed';
  return 'partial';
}

const esc = (s: string | number | boolean | undefined | null) =>
  String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

function cell(c: TargetCell | undefined): string {
  if (!c) return '<td class="missing">-</td>';
  const label = c.id ?? c.state;
  const title = [c.state, c.public ? 'public' : 'private', c.detail].filter(Boolean).join(': ');
  return `<td class="${esc(c.state)}" title="${esc(title)}">${esc(label)}${c.public ? ' <span class="pub" aria-label="public">●</span>' : ''}</td>`;
}

function jobHtml(j: JobStatus): string {
  const rows = j.regions
    .map(
      (r) => `<tr><th scope="row">${esc(r)}</th>${j.variants.map((v) => cell(j.grid[r]?.[v])).join('')}</tr>`,
    )
    .join('');
  const failures = j.failures.length
    ? `<ul class="failures">${j.failures.map((f) => `<li><b>${esc(f.region)} ${esc(f.variant)}</b>: ${esc(f.reason)}</li>`).join('')}</ul>`
    : '';
  return `<section class="job" data-job="${esc(j.id)}" data-provider="${esc(j.provider)}" data-state="${esc(j.state)}">
  <h3><span class="provider">${esc(j.provider)}</span> ${esc(j.build ?? `${j.imageType ?? ''} ${j.arch}`)} <span class="state ${esc(j.state)}">${esc(j.state)}${j.step ? ` (${esc(j.step)})` : ''}</span></h3>
  <p class="meta">${esc(j.channel)} · ${esc(j.arch)} · attempt ${j.attempts}${j.finishedAt ? ` · finished ${esc(j.finishedAt)}` : ''}</p>
  ${j.error ? `<p class="error">${esc(j.error)}</p>` : ''}
  ${j.regions.length ? `<table class="grid"><thead><tr><th>${j.provider === 'aws' ? 'region' : 'location'}</th>${j.variants.map((v) => `<th>${esc(v)}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>` : ''}
  ${failures}
  ${j.command ? `<details><summary>equivalent command</summary><code>${esc(j.command)}</code></details>` : ''}
</section>`;
}

function lifecycleHtml(l: LifecycleStatus): string {
  if (l.publicImages.length === 0 && l.streams.length === 0) return '';
  const counts = l.publicImages
    .map(
      (p) =>
        `<tr><td>${esc(p.provider)}</td><td>${esc(p.channel)}</td><td>${esc(p.arch)}</td><td class="n">${p.images}</td></tr>`,
    )
    .join('');
  const streams = l.streams
    .map(
      (s) =>
        `<li data-stream="${esc(s.stream)}">${esc(s.stream)}: last pruned ${esc(s.lastRunAt ?? 'never')}, next ${esc(s.nextDueAt)}${s.error ? ` <span class="error">${esc(s.error)}</span>` : ''}</li>`,
    )
    .join('');
  return `<section class="lifecycle"><h2>Public images</h2>
<table class="grid public-images"><thead><tr><th>provider</th><th>channel</th><th>arch</th><th>public images</th></tr></thead><tbody>${counts}</tbody></table>
<ul class="streams">${streams}</ul></section>`;
}

export function statusHtml(model: StatusModel): string {
  const composes = model.composes
    .map(
      (c) => `<article class="compose" data-compose="${esc(c.composeId)}" data-status="${esc(c.status)}">
<h2>${esc(c.composeId)} <span class="state ${esc(c.status)}">${esc(c.status)}</span></h2>
<p class="meta">${esc(c.channel ?? 'channel unknown')} · received ${esc(c.receivedAt)} · ${safeHref(c.location) ? `<a href="${esc(safeHref(c.location))}">compose</a>` : `compose at ${esc(c.location)}`}</p>
${c.readingSeconds !== undefined ? `<p class="${c.stalled ? 'error stalled' : 'meta'}">${c.stalled ? 'stalled: ' : ''}reading its metadata for ${c.readingSeconds} s</p>` : ''}
${c.error ? `<p class="error">${esc(c.error)}</p>` : ''}
${c.jobs.map(jobHtml).join('\n')}
</article>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30"><title>joystick: published images</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;max-width:80rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin:.2rem 0}h3{font-size:1rem;margin:.6rem 0 .2rem}
.compose{border:1px solid #ccc;border-radius:6px;padding:.8rem;margin:1rem 0}
.meta{color:#666;margin:.1rem 0}.error{color:#a00}
.state{font-size:.8rem;padding:.1rem .4rem;border-radius:3px;background:#eee}
.state.published,.state.complete{background:#d9f2d9}.state.failed{background:#f8d0d0}.state.partial{background:#fbe7c6}.state.publishing,.state.running,.state.queued{background:#d8e6fa}
table.grid{border-collapse:collapse;font:12px monospace}table.grid td,table.grid th{border:1px solid #ddd;padding:.15rem .4rem;text-align:left}
td.published{background:#eefbee}td.failed,td.missing{background:#fdeaea}td.pending{color:#888}
.provider{font:12px monospace;padding:.1rem .3rem;border:1px solid #bbb;border-radius:3px}
.pub{color:#2a2}.failures{color:#a00}
</style></head>
<body><h1>joystick: published images</h1>
<p class="meta">Generated ${esc(model.generatedAt)} · <a href="status.json">JSON</a> · <a href="metrics">metrics</a></p>
${lifecycleHtml(model.lifecycle)}
${composes || '<p>No composes yet.</p>'}
</body></html>
`;
}
