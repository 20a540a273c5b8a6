import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pungiMessage, writeJoystickConfig } from '../support/joystick.js';
import { collect, uniquePrefix, type Received } from '../support/rabbit.js';
import { runCli, startWorld, type World } from '../support/world.js';

/**
 * A failure a person acted on is announced again when it happens again: `joystick retry` starts a new
 * round, and a second failure of the same compose or job goes out on the bus, under a new message id,
 * instead of being taken for a copy of the first one (same outbox key, insert ignored).
 */

let world: World;
let prefix: string;
let config: string;
let out: Awaited<ReturnType<typeof collect>>;

beforeAll(async () => {
  world = await startWorld({ regions: ['us-east-1'] });
  prefix = uniquePrefix();
  config = await writeJoystickConfig(world, {
    prefix,
    queue: `joystick_retry_${prefix.slice(-8)}`,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: ['us-east-1'],
    arches: ['x86_64'],
  });
  out = await collect([`${prefix}.joystick.#`, `${prefix}.fedimg.#`]);
});
afterAll(async () => {
  await out?.close();
  await world?.close();
});

const topic = (t: string, id: string) => (m: Received) =>
  m.routingKey === `${prefix}.${t}` && (m.body.compose_id === id || m.body.compose === id);

describe('a failure after `joystick retry`', { timeout: 180_000 }, () => {
  it('is announced again, for a compose and for a job', async () => {
    // A compose without images.json (broken), and one whose image does not match its checksum.
    const broken = await world.compose({ rawSize: 8 * 2 ** 20, version: '32', arches: ['x86_64'] });
    rmSync(join(world.dir, 'composes', broken.composePath, 'metadata', 'images.json'));
    const corrupt = await world.compose({ rawSize: 8 * 2 ** 20, version: '33', arches: ['x86_64'] });
    const meta = join(world.dir, 'composes', corrupt.composePath, 'metadata', 'images.json');
    writeFileSync(meta, readFileSync(meta, 'utf8').replace(corrupt.images.x86_64!.sha256, 'e'.repeat(64)));

    const file = join(world.dir, 'messages.jsonl');
    writeFileSync(
      file,
      [broken, corrupt]
        .map((c) => JSON.stringify({ topic: `${prefix}.pungi.compose.status.change`, body: pungiMessage(c) }))
        .join('\n') + '\n',
    );
    const first = await runCli('joystick', ['replay', file, '--publish', '--config', config], world.env);
    expect(first.code, first.stderr).toBe(1);
    await out.waitFor(
      (g) =>
        g.some(topic('joystick.compose.failed', broken.composeId)) &&
        g.some(topic('joystick.release.failed', corrupt.composeId)),
      60_000,
      'the first failures',
    );

    for (const c of [broken, corrupt]) {
      const again = await runCli('joystick', ['retry', c.composeId, '--now', '--config', config], world.env);
      expect(again.code, again.stderr).toBe(1);
    }
    await out.waitFor(
      (g) =>
        g.filter(topic('joystick.compose.failed', broken.composeId)).length === 2 &&
        g.filter(topic('joystick.release.failed', corrupt.composeId)).length === 2,
      60_000,
      'the second failures',
    );

    const composeFailed = out.got.filter(topic('joystick.compose.failed', broken.composeId));
    const releaseFailed = out.got.filter(topic('joystick.release.failed', corrupt.composeId));
    const uploadFailed = out.got.filter(
      (m) => topic('fedimg.image.upload', corrupt.composeId)(m) && m.body.status === 'failed',
    );
    // One per round; fedimg's upload failure once per volume type per round.
    expect(composeFailed).toHaveLength(2);
    expect(releaseFailed).toHaveLength(2);
    expect(uploadFailed).toHaveLength(4);
    for (const msgs of [composeFailed, releaseFailed])
      expect(new Set(msgs.map((m) => m.properties.messageId)).size).toBe(2);
    expect(releaseFailed.every((m) => /sha256 mismatch/.test(String(m.body.reason)))).toBe(true);
  });
});
