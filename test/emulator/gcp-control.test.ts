import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ImagesClient } from '@google-cloud/compute';
import { describe, expect, it } from 'vitest';
import { GcpEmulatorClient, type GcpEndpoints } from '../../tools/emulator/gcp/index.js';
import { keyFileAuth, rejection } from './gcp-helpers.js';
import { standalone, unreachable } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../tools/emulator/gcp/main.ts', import.meta.url));

describe('the standalone Google Cloud emulator', () => {
  it('is used from another process with only what it prints, and stops cleanly on SIGTERM', async () => {
    const emu = await standalone<GcpEndpoints>(MAIN, ['--bucket', 'plume-images', '--pending-ms', '0']);
    const e = emu.ready;
    const images = new ImagesClient({ ...e.endpoints.computeClient, authClient: keyFileAuth(e.keyFilePath) });
    try {
      const control = new GcpEmulatorClient(e.controlEndpoint);
      expect(await control.health()).toBe(true);
      const bucket = async (name: string) =>
        (
          await fetch(`${e.endpoints.storage}/storage/v1/b/${name}`, {
            headers: { authorization: `Bearer ${await control.accessToken()}` },
          })
        ).status;
      expect(await bucket('plume-images')).toBe(200);
      await control.createBucket('more-images', 'EU');
      expect(await bucket('more-images')).toBe(200);

      await control.addFault({
        service: 'compute',
        operation: 'images.list',
        kind: 'access-denied',
        times: 1,
      });
      expect((await rejection(images.list({ project: e.project }))).httpStatusCode).toBe(403);
      expect((await images.list({ project: e.project }))[0]).toEqual([]);
      expect((await control.faultStats()).map((f) => f.fired)).toEqual([1]);
      const calls = await control.calls();
      expect(calls.filter((c) => c.fault === 'access-denied').map((c) => c.operation)).toEqual([
        'images.list',
      ]);
      await control.setPendingMs(10);

      await control.reset();
      expect(await control.calls()).toEqual([]);
      expect(await bucket('plume-images')).toBe(404);
    } finally {
      await images.close();
      emu.child.kill('SIGTERM');
    }
    expect(await emu.exited).toBe(0);
    expect(await unreachable(e.endpoints.firebaseStorage)).toBe(true);
    expect(existsSync(e.keyFilePath)).toBe(false);
  });

  it('leaves no Firebase emulator behind even when killed outright', async () => {
    const emu = await standalone<GcpEndpoints>(MAIN);
    emu.child.kill('SIGKILL');
    await emu.exited;
    expect(await unreachable(emu.ready.endpoints.firebaseStorage)).toBe(true);
  });
});
