import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeJoystickToml } from '../../tools/reliability/joystick.js';
import { pungiBody } from '../../tools/reliability/pungi.js';
import { worldAzureSection, worldGcpSection, type World, type startCli } from './world.js';

export interface JoystickSetup {
  prefix: string;
  queue: string;
  database: string;
  regions: string[];
  volumeTypes?: string[];
  arches?: string[];
  channels?: string[];
  /** More `[consumer_config]` lines. */
  extra?: string;
  maxParallelJobs?: number;
  maxJobAttempts?: number;
  /** The replicas' leases (default 10 s). */
  leaseSeconds?: number;
  /** More `[consumer_config.plume.source]` lines. */
  sourceExtra?: string;
}

/**
 * Write a fedora-messaging config.toml for joystick against the world's emulators and compose host: AWS
 * always, and Google Cloud and Azure when the world started them.
 */
export function writeJoystickConfig(world: World, s: JoystickSetup, file = 'joystick.toml'): Promise<string> {
  return writeJoystickToml({
    ...s,
    path: join(world.dir, file),
    connectionName: 'joystick-test',
    awsEndpoint: world.emulator.endpoint,
    leaseSeconds: s.leaseSeconds ?? 10,
    tables: [
      world.gcp ? worldGcpSection(world.gcp, 'consumer_config.plume.gcp') : '',
      world.azure ? worldAzureSection(world.azure, '', 'consumer_config.plume.azure') : '',
    ].join(''),
  });
}

/** Pungi's status-change message for a compose the world serves (FINISHED unless told). */
export function pungiMessage(
  c: { composeId: string; url: string },
  status = 'FINISHED',
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return pungiBody(c.composeId, c.url, status, extra);
}

/** Wait until a started `joystick run` consumes; fail with its log if it exits first or takes over 30 s. */
export async function untilConsuming(joystick: ReturnType<typeof startCli>): Promise<void> {
  const end = Date.now() + 30_000;
  while (!/"msg":"consuming"/.test(joystick.output().stderr)) {
    if (Date.now() > end || joystick.child.exitCode !== null)
      throw new Error(`joystick did not start: ${joystick.output().stderr}`);
    await sleep(50);
  }
}
