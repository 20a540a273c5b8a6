import { fileURLToPath } from 'node:url';
import { CompleteSnapshotCommand } from '@aws-sdk/client-ebs';
import { DescribeRegionsCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { EmulatorClient } from '../../tools/emulator/client.js';
import { ebs, ec2, rejection, standalone as startStandalone, unreachable, writeSnapshot } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../tools/emulator/main.ts', import.meta.url));

async function standalone(args: string[] = []) {
  const s = await startStandalone<{ endpoint: string; motoEndpoint: string }>(MAIN, args);
  return { ...s, ...s.ready };
}

const motoGone = (endpoint: string) => unreachable(`${endpoint}/moto-api/`);

describe('the standalone emulator and its control API', () => {
  it('is driven from another process and stops cleanly on SIGTERM', async () => {
    const emu = await standalone(['--block-size', '524288', '--pending-ms', '0']);
    try {
      const control = new EmulatorClient(emu.endpoint);
      expect(await control.health()).toBe(true);

      const id = await control.addFault({
        service: 'ec2',
        operation: 'DescribeRegions',
        kind: 'access-denied',
        times: 1,
      });
      const err = await rejection(ec2(emu.endpoint).send(new DescribeRegionsCommand({})));
      expect(err.name).toBe('UnauthorizedOperation');
      expect(await control.faultStats()).toEqual([expect.objectContaining({ id, fired: 1 })]);
      await ec2(emu.endpoint).send(new DescribeRegionsCommand({}));
      expect((await control.calls()).map((c) => [c.operation, c.status])).toEqual([
        ['DescribeRegions', 403],
        ['DescribeRegions', 200],
      ]);
      await control.clearCalls();
      expect(await control.calls()).toEqual([]);
      expect(await control.removeFault(id)).toBe(true);
      await expect(control.addFault({ kind: 'nonsense' } as never)).rejects.toThrow(/unknown fault kind/);

      await control.setPendingMs(60_000);
      const client = ebs(emu.endpoint);
      const { snapshotId } = await writeSnapshot(client, 1, [0, 1]);
      await client.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: 2 }));
      expect(await control.snapshotStats(snapshotId)).toMatchObject({
        blocksPut: 2,
        blockIndexes: [0, 1],
        completed: true,
        status: 'pending',
      });
      await control.setPendingMs(0);
      expect((await control.snapshotStats(snapshotId))?.status).toBe('completed');
      expect(await control.snapshotStats('snap-0123456789abcdef0')).toBeUndefined();

      await control.reset();
      const after = await ec2(emu.endpoint).send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
      expect(after.Snapshots).toEqual([]);
      expect(await control.snapshotStats(snapshotId)).toBeUndefined();
    } finally {
      emu.child.kill('SIGTERM');
    }
    expect(await emu.exited).toBe(0);
    expect(await motoGone(emu.motoEndpoint)).toBe(true);
  });

  it('leaves no moto behind even when killed outright', async () => {
    const emu = await standalone();
    emu.child.kill('SIGKILL');
    await emu.exited;
    expect(await motoGone(emu.motoEndpoint)).toBe(true);
  });
});
