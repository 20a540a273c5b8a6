import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pungiMessage, untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { AMQP_URL, deleteQueue, uniquePrefix } from '../support/rabbit.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';

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
  if (extraBus) await writeFile(path, `${extraBus}\n${await readFile(path, 'utf8')}`);
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

/** A dump file (one message a line, as fedora-messaging and datagrepper write them) of Pungi messages. */
async function dump(name: string, bodies: unknown[]): Promise<string> {
  const path = join(world.dir, `${name}.jsonl`);
  await writeFile(
    path,
    bodies
      .map((body) => JSON.stringify({ topic: 'org.fedoraproject.prod.pungi.compose.status.change', body }))
      .join('\n') + '\n',
  );
  return path;
}

describe('joystick replay exit statuses', { timeout: 120_000 }, () => {
  it('exits 0 when every message was carried through (published, or not ours)', async () => {
    const c = await config('replay-ok');
    const compose = await world.compose({ rawSize: 8 * 2 ** 20, version: '31', arches: ['x86_64'] });
    const file = await dump('replay-ok', [
      pungiMessage(compose),
      // Not a watched kind of compose: nothing to do, and that is an outcome.
      pungiMessage({
        composeId: 'Fedora-Cloud-31-20191020.t.3',
        url: `${world.files.url}/Fedora-Cloud-31-20191020.t.3/compose`,
      }),
      pungiMessage(compose, 'STARTED'),
    ]);
    const res = await runCli('joystick', ['replay', file, '--config', c.path], world.env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('fedimg.image.publish');
  });

  it('exits 1 when the compose host cannot be reached, naming the compose', async () => {
    const c = await config('replay-unreachable');
    // Reading metadata is retried for an hour in the service; replay must not wait for it, nor say 0.
    await writeFile(
      c.path,
      (await readFile(c.path, 'utf8')).replace(
        'metadata_retry_minutes = 0.05',
        'metadata_retry_minutes = 60',
      ),
    );
    const file = await dump('replay-unreachable', [
      pungiMessage({
        composeId: 'Fedora-Cloud-31-20191101.0',
        url: 'http://127.0.0.1:1/Fedora-Cloud-31-20191101.0/compose',
      }),
    ]);
    const res = await runCli('joystick', ['replay', file, '--config', c.path], world.env);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(
      /^joystick: compose Fedora-Cloud-31-20191101\.0: not carried through: its metadata could not be read \(.+\)$/m,
    );
    expect(res.stdout).toBe('');
  });

  it('exits 1 when a message was dropped as invalid', async () => {
    const c = await config('replay-invalid');
    const file = await dump('replay-invalid', [{ status: 'FINISHED', compose_id: 42, location: 'x' }]);
    const res = await runCli('joystick', ['replay', file, '--config', c.path], world.env);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(
      /^joystick: line 1: dropped: not a Pungi compose status message: compose_id: /m,
    );
  });
});
