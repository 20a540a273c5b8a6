/**
 * Peak memory, as the kernel counts it: VmHWM is the most resident memory a process ever had, so a
 * measurement run in its own process reads its own peak at the end, and a child's peak is the last value
 * seen while it ran (it only grows, so polling loses at most the final tick's growth).
 */
import { readFileSync, readdirSync } from 'node:fs';

function statusField(pid: number | 'self', field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function peakRss(pid: number | 'self' = 'self'): number {
  return statusField(pid, 'VmHWM') ?? process.resourceUsage().maxRSS * 1024;
}

function childPids(): number[] {
  const out: number[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const text = readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // utime and stime, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

export interface ChildUsage {
  /** Highest peak RSS per command (bytes). */
  peaks: Record<string, number>;
  /** CPU seconds per command, summed over its processes (as last seen). */
  cpu: Record<string, number>;
}

/** Watch this process's children (the decompressor): each command's highest peak RSS and its CPU time. */
export function watchChildren(intervalMs = 50): { stop(): ChildUsage } {
  const peaks: Record<string, number> = {};
  const cpuByPid = new Map<number, { name: string; cpu: number }>();
  const tick = () => {
    for (const pid of childPids()) {
      const rss = statusField(pid, 'VmHWM');
      const cpu = cpuSeconds(pid);
      if (rss === undefined || cpu === undefined) continue;
      const name = commandOf(pid);
      peaks[name] = Math.max(peaks[name] ?? 0, rss);
      cpuByPid.set(pid, { name, cpu });
    }
  };
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      tick();
      clearInterval(timer);
      const cpu: Record<string, number> = {};
      for (const { name, cpu: s } of cpuByPid.values()) cpu[name] = (cpu[name] ?? 0) + s;
      return { peaks, cpu };
    },
  };
}
