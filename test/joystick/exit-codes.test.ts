import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { AMQP_URL, deleteQueue, uniquePrefix } from '../support/rabbit.js';
import { startCli, startWorld, type World } from '../support/world.js';

/**
 * joystick's exit statuses, through the built CLI as systemd starts it: `Restart=on-failure` restarts it
 * only when it exits non-zero, so a consumer that fails must not look like a clean stop.
 */

let world: World;

beforeAll(async () => {
  world = await startWorld({ regions: ['us-east-1'] });
});
afterAll(async () => {
  await world?.close();
});

async function config(name: string, extraBus = ''): Promise<{ path: string; queue: string }> {
  const prefix = uniquePrefix();
  const queue = `joystick_exit_${prefix.slice(-8)}`;
  const path = await writeJoystickConfig(
    world,
    {
      prefix,
      queue,
      database: `sqlite:///${join(world.dir, `${name}.db`)}`,
      regions: ['us-east-1'],
    },
    `${name}.toml`,
  );
  if (extraBus) {
    const { readFile, writeFile } = await import('node:fs/promises');
    await writeFile(path, `${extraBus}\n${await readFile(path, 'utf8')}`);
  }
  return { path, queue };
}

describe('joystick run exit statuses', { timeout: 120_000 }, () => {
  it('exits 0 when stopped by SIGTERM', async () => {
    const c = await config('sigterm');
    const joystick = startCli('joystick', ['run', '--config', c.path], world.env);
    try {
      await untilConsuming(joystick);
      joystick.child.kill('SIGTERM');
      const res = await joystick.done;
      expect(res.code, res.stderr).toBe(0);
    } finally {
      joystick.child.kill('SIGKILL');
      await deleteQueue(c.queue);
    }
  });

  it('exits non-zero (13) when the broker cancels its consumer', async () => {
    const c = await config('cancelled');
    const joystick = startCli('joystick', ['run', '--config', c.path], world.env);
    try {
      await untilConsuming(joystick);
      // Deleting the queue makes RabbitMQ cancel the consumer: fedora-messaging's ConsumerCanceled.
      const conn = await amqp.connect(AMQP_URL);
      const ch = await conn.createChannel();
      await ch.deleteQueue(c.queue);
      await conn.close();
      const res = await joystick.done;
      expect(res.code, res.stderr).toBe(13);
      expect(res.stderr).toContain('"msg":"the consumer failed"');
    } finally {
      joystick.child.kill('SIGKILL');
      await deleteQueue(c.queue);
    }
  });

  it('exits 1 when it cannot consume at all (a queue that passive declares cannot find)', async () => {
    const c = await config('passive', 'passive_declares = true');
    const joystick = startCli('joystick', ['run', '--config', c.path], world.env);
    try {
      const res = await joystick.done;
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain('"msg":"cannot consume"');
    } finally {
      joystick.child.kill('SIGKILL');
      await deleteQueue(c.queue);
    }
  });
});
