import { EXIT } from '../shared/errors.js';
import type { ComposeRow, JobRow } from './store/job-store.js';

/**
 * How a batch of composes handled in one process (`joystick replay`, `retry --now`) ended, as an exit
 * status and one line per compose that was not carried through. Pure: the caller reads the rows.
 *
 * Carried through means the compose reached an outcome: ignored (not ours, with the reason logged), or
 * planned with every job complete. A compose whose metadata could not be read yet, or whose jobs wait
 * for another attempt, was not: exiting 0 there would tell a script that nothing is left to do.
 */
export interface BatchOutcome {
  code: number;
  problems: string[];
}

type Compose = Pick<ComposeRow, 'composeId' | 'status' | 'error'>;
type Job = Pick<JobRow, 'id' | 'composeId' | 'state' | 'error'>;

export function batchOutcome(
  composeIds: readonly string[],
  composes: readonly (Compose | undefined)[],
  jobs: readonly Job[],
  dropped: readonly string[] = [],
): BatchOutcome {
  const failures: string[] = [...dropped];
  const partial: string[] = [];
  for (const [i, id] of composeIds.entries()) {
    const c = composes[i];
    if (!c) {
      failures.push(`compose ${id}: not recorded`);
      continue;
    }
    if (c.status === 'ignored') continue;
    if (c.status === 'received') {
      failures.push(
        `compose ${id}: not carried through: its metadata could not be read (${c.error ?? 'not tried yet'})`,
      );
      continue;
    }
    if (c.status === 'failed') {
      failures.push(`compose ${id}: failed: ${c.error ?? 'no reason recorded'}`);
      continue;
    }
    for (const j of jobs.filter((x) => x.composeId === id)) {
      if (j.state === 'failed') failures.push(`job ${j.id}: failed: ${j.error ?? 'no reason recorded'}`);
      else if (j.state === 'queued' || j.state === 'running')
        failures.push(
          `job ${j.id}: not carried through: waiting for another attempt (${j.error ?? j.state})`,
        );
      else if (j.state === 'partial')
        partial.push(`job ${j.id}: partial: ${j.error ?? 'some regions missing'}`);
    }
  }
  const code = failures.length > 0 ? EXIT.failure : partial.length > 0 ? EXIT.partial : EXIT.ok;
  return { code, problems: [...failures, ...partial] };
}
