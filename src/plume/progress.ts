import { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Logger } from '../shared/log.js';
import { imageKey } from './plan.js';
import type { ReleaseEvent } from './providers/types.js';

const MiB = 2 ** 20;

export interface Progress {
  emit: (event: ReleaseEvent) => void;
  /** Where log lines go while bars are drawn (so they do not tear the bars). */
  logStream: NodeJS.WritableStream;
  stop(): void;
}

/** Render pino's JSON lines as short human lines, for a terminal. */
function humanLine(line: string): string {
  try {
    const { level, msg, time: _t, name: _n, ...rest } = JSON.parse(line) as Record<string, unknown>;
    const extra = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    return `${String(level)}: ${String(msg)}${extra ? ` (${extra})` : ''}\n`;
  } catch {
    return line;
  }
}

/** Progress bars on a terminal. */
export function terminalProgress(targets: number): Progress {
  const bars = new cliProgress.MultiBar(
    {
      clearOnComplete: false,
      hideCursor: true,
      format: ' {label} |{bar}| {percentage}% {detail}',
      barsize: 30,
      stream: process.stderr,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const uploads = new Map<string, cliProgress.SingleBar>();
  let images: cliProgress.SingleBar | undefined;
  const started = Date.now();
  const ready = new Set<string>();
  const published = new Set<string>();
  const logStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      bars.log(humanLine(chunk.toString()));
      cb();
    },
  });
  return {
    logStream,
    emit(event) {
      switch (event.type) {
        case 'step':
          if (event.state !== 'started')
            bars.log(
              `${event.targetName ? `${event.targetName}: ` : ''}${event.step}: ${event.state}${event.detail ? ` (${event.detail})` : ''}\n`,
            );
          break;
        case 'upload-progress': {
          const name = event.targetName ?? '';
          let upload = uploads.get(name);
          if (!upload)
            uploads.set(
              name,
              (upload = bars.create(Math.max(1, Math.round(event.totalBytes / MiB)), 0, {
                label: `upload ${name}`.trim().padEnd(7),
                detail: '',
              })),
            );
          const secs = (Date.now() - started) / 1000;
          upload.update(Math.round(event.rawBytes / MiB), {
            detail: `${Math.round(event.rawBytes / MiB)}/${Math.round(event.totalBytes / MiB)} MiB read, ${Math.round(event.bytesSent / MiB)} MiB sent, ${event.zeroBlocks} zero blocks skipped, ${Math.round(event.rawBytes / MiB / Math.max(secs, 0.001))} MiB/s`,
          });
          break;
        }
        case 'image-ready':
        case 'image-published': {
          (event.type === 'image-ready' ? ready : published).add(
            `${event.targetName ?? ''}:${imageKey(event.target)}`,
          );
          images ??= bars.create(targets, 0, { label: 'images ', detail: '' });
          images.update(ready.size, {
            detail: `${ready.size}/${targets} ready, ${published.size} published`,
          });
          break;
        }
        case 'target-failed':
          bars.log(`failed: ${`${event.targetName ?? ''}:${imageKey(event.target)}`}: ${event.error}\n`);
          break;
        default:
          break;
      }
    },
    stop() {
      bars.stop();
    },
  };
}

/** Without a terminal: JSON log lines, upload progress at most every few seconds. */
export function logProgress(base: Logger, everyMs = 5000): Progress {
  let last = 0;
  return {
    logStream: process.stderr,
    emit(event) {
      const log = event.targetName ? base.child({ target: event.targetName }) : base;
      switch (event.type) {
        case 'step':
          log.info(
            { step: event.step, state: event.state, detail: event.detail },
            `step ${event.step} ${event.state}`,
          );
          break;
        case 'upload-progress':
          if (Date.now() - last >= everyMs) {
            last = Date.now();
            log.info(
              {
                rawMiB: Math.round(event.rawBytes / MiB),
                totalMiB: Math.round(event.totalBytes / MiB),
                sentMiB: Math.round(event.bytesSent / MiB),
                blocksSent: event.blocksSent,
                zeroBlocks: event.zeroBlocks,
              },
              'upload progress',
            );
          }
          break;
        case 'disk-ready':
          log.info(
            { region: event.location, disk: event.id, reused: event.reused },
            event.reused ? 'disk found from an earlier run' : 'disk ready',
          );
          break;
        case 'image-ready':
          log.info(
            {
              region: event.target.location,
              volumeType: event.target.variant,
              image: event.id,
              reused: event.reused,
            },
            'image ready',
          );
          break;
        case 'image-published':
          log.info(
            { region: event.target.location, volumeType: event.target.variant, image: event.id },
            'image published',
          );
          break;
        case 'target-failed':
          log.error(
            { region: event.target.location, volumeType: event.target.variant, err: event.error },
            'target failed',
          );
          break;
        case 'retry':
          log.warn({ what: event.what, attempt: event.attempt, err: event.error }, 'retrying');
          break;
      }
    },
    stop() {},
  };
}
