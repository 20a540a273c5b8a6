import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { AMQP_URL, collect, deleteQueue, publishRaw, uniquePrefix } from '../support/rabbit.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';

/**
 * A whole joystick run with distinctive secrets everywhere they can be given (the AMQP password in
 * amqp_url, the AWS secret key and session token), at debug level, including a broker that refuses the
 * password: none of them appears in anything joystick prints or serves.
 */
const REGIONS = ['us-east-1', 'eu-west-1'];
const USER = `joystick_secret_${randomBytes(3).toString('hex')}`;
const AMQP_PASSWORD = `amqpPassw0rd-${randomBytes(8).toString('hex')}`;
const WRONG_PASSWORD = `wrongAmqpPassw0rd-${randomBytes(8).toString('hex')}`;
const AWS_SECRET = `awsSecretKey-${randomBytes(12).toString('hex')}`;
const AWS_TOKEN = `awsSessionToken-${randomBytes(12).toString('hex')}`;
const SECRETS = [AMQP_PASSWORD, WRONG_PASSWORD, AWS_SECRET, AWS_TOKEN];

let world: World;
let prefix: string;
let queue: string;

const rabbitmqctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'pipe' });

/** The test config, logging in as USER with `password`. */
function configWith(password: string, file: string): string {
  const path = join(world.dir, file);
  const url = new URL(AMQP_URL);
  url.username = USER;
  url.password = password;
  const text = readFileSync(join(world.dir, 'joystick.toml'), 'utf8');
  writeFileSync(path, text.replace(/^amqp_url = .*$/m, `amqp_url = "${url.href}"`));
  return path;
}

beforeAll(async () => {
  rabbitmqctl('add_user', USER, AMQP_PASSWORD);
  rabbitmqctl('set_permissions', '-p', '/', USER, '.*', '.*', '.*');
  world = await startWorld({ regions: REGIONS });
  prefix = uniquePrefix();
  queue = `joystick_secrets_${prefix.slice(-8)}`;
  await writeJoystickConfig(world, {
    prefix,
    queue,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: REGIONS,
    arches: ['x86_64'],
  });
});

afterAll(async () => {
  await deleteQueue(queue);
  await world?.close();
  try {
    rabbitmqctl('delete_user', USER);
  } catch {
    /* already gone */
  }
});

describe('secrets never reach joystick output', { timeout: 240_000 }, () => {
  it('a full run, its status page and commands, and a refused login print none of them', async () => {
    const env = {
      ...world.env,
      AWS_SECRET_ACCESS_KEY: AWS_SECRET,
      AWS_SESSION_TOKEN: AWS_TOKEN,
      PLUME_LOG_LEVEL: 'debug',
    };
    const printed: string[] = [];
    const config = configWith(AMQP_PASSWORD, 'secret.toml');
    const compose = await world.compose({ rawSize: 8 * 2 ** 20, arches: ['x86_64'] });
    const out = await collect([
      `${prefix}.fedimg.#`,
      `${prefix}.fedora_image_uploader.#`,
      `${prefix}.joystick.#`,
    ]);
    const joystick = startCli('joystick', ['run', '--config', config, '--verbose'], env);
    try {
      await untilConsuming(joystick);
      const m = /^(.*)-(\d+)-(\d{8})\.(\d+)$/.exec(compose.composeId)!;
      await publishRaw(`${prefix}.pungi.compose.status.change`, {
        status: 'FINISHED',
        compose_id: compose.composeId,
        location: compose.url,
        compose_date: m[3],
        compose_type: 'production',
        compose_respin: 0,
        compose_label: `RC-${m[3]}.0`,
        release_short: m[1],
        release_version: m[2],
      });
      await out.waitFor(
        (g) => g.some((x) => x.routingKey.startsWith(`${prefix}.fedora_image_uploader.`)),
        120_000,
        'the release',
      );
      const url = /"url":"([^"]+)","msg":"status page/.exec(joystick.output().stderr)![1]!;
      for (const path of ['/status', '/status.json', '/metrics', '/healthz', '/readyz'])
        printed.push(await (await fetch(`${url}${path}`)).text());
      for (const args of [
        ['status', '--config', config],
        ['status', '--config', config, '--json'],
        ['run', '--config', config, '--check'],
      ]) {
        const res = await runCli('joystick', args, env);
        printed.push(res.stdout, res.stderr);
      }
    } finally {
      joystick.child.kill('SIGTERM');
      const res = await joystick.done;
      printed.push(res.stdout, res.stderr);
      await out.close();
    }
    expect(printed.join('\n')).toContain('"level":"debug"');

    // The broker refuses a wrong password: joystick says so, without the password.
    const wrong = startCli('joystick', ['run', '--config', configWith(WRONG_PASSWORD, 'wrong.toml')], env);
    const end = Date.now() + 30_000;
    while (!/cannot reach the message broker/.test(wrong.output().stderr) && Date.now() < end)
      await sleep(100);
    wrong.child.kill('SIGTERM');
    const refused = await wrong.done;
    printed.push(refused.stdout, refused.stderr);
    expect(refused.stderr).toMatch(/cannot reach the message broker/);
    expect(refused.stderr).toContain(USER);

    const all = printed.join('\n');
    for (const secret of SECRETS) expect(all, secret.split('-')[0]).not.toContain(secret);
  });
});
