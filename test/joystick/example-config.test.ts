import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Bus, loadBusConfig } from '../../src/joystick/bus/index.js';
import { REPO, runCli } from '../support/world.js';

/**
 * The README's step 3 runs joystick with `config.example.toml` exactly as shipped: `joystick run --check`
 * must accept it, and what its [client_properties] say (a list of contacts, as Fedora's own files write
 * it) must reach RabbitMQ as the list it is.
 */

const run = promisify(execFile);
const home = mkdtempSync(join(tmpdir(), 'joystick-example-home-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe('the shipped config.example.toml', () => {
  it('passes `joystick run --check` as the README runs it', async () => {
    // A home without AWS files: the check looks at ~/.aws, and the developer's own must not decide this.
    const res = await runCli('joystick', ['run', '--check', '--config', join(REPO, 'config.example.toml')], {
      HOME: home,
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('topic prefix: org.fedoraproject.dev; publishing to amq.topic');
    expect(res.stdout.trim().split('\n').pop()).toBe('configuration OK');
  });

  it('sends its client properties to RabbitMQ, the contact list as a list', async () => {
    const { config } = await loadBusConfig({ path: join(REPO, 'config.example.toml') });
    expect(config.client_properties.app_contacts_email).toEqual(['cloud@lists.fedoraproject.org']);
    const name = `joystick-example-${randomBytes(4).toString('hex')}`;
    const bus = await Bus.open(config, { connectionName: name });
    try {
      const { stdout } = await run('rabbitmqctl', [
        'list_connections',
        'client_properties',
        '-q',
        '--no-table-headers',
      ]);
      const line = stdout.split('\n').find((l) => l.includes(`{"connection_name","${name}"}`));
      expect(line, stdout).toBeDefined();
      expect(line).toMatch(/\{"app_contacts_email",\["cloud@lists\.fedoraproject\.org"\]\}/);
      expect(line).toContain('{"app","joystick"}');
    } finally {
      await bus.close();
    }
  });
});
