#!/usr/bin/env node
// Check joystick's shipped configuration files: node deploy/ci/check-configs.mjs DIR...
// Each DIR holds a joystick.toml (fedora-messaging config.toml + [consumer_config]) and the
// plume.toml it names. For each pair:
//   1. joystick.toml through the project's own fedora-messaging config loader (dist/joystick/bus);
//   2. [consumer_config] through joystick's own schema (dist/joystick/config.js) when built, and
//      against the values Fedora's deployment needs (names, types, paths);
//   3. plume.toml through plume's config schema (dist/plume/config.js);
//   4. consistency: bindings use the topic prefix, TLS files sit where Fedora puts them, the paths
//      point inside /etc and /var/lib/joystick, no credentials in either file;
//   5. when joystick's CLI is built (dist/joystick/cli.js), `joystick run --config FILE --check` on
//      a copy whose file paths point at temporary stand-ins (the plume.toml beside it, throwaway
//      certificates, a temporary database), so the start command's own validation runs too.
// Needs `npm run build` first. Exit 1 if anything fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'smol-toml';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { parseBusConfig } = await import(join(root, 'dist/joystick/bus/config.js'));
const { parseConfig } = await import(join(root, 'dist/plume/config.js'));
const cli = join(root, 'dist/joystick/cli.js');
// joystick's own [consumer_config] schema, once it is built; until then the rules below stand in.
const appConfigModule = join(root, 'dist/joystick/config.js');
const { parseConsumerConfig } = existsSync(appConfigModule) ? await import(appConfigModule) : {};
const joystickBin = join(root, 'bin/joystick.js');

const CONSUMER_CONFIG = {
  http_listen: (v) => typeof v === 'string' && /^[\w.:[\]-]+:\d{1,5}$/.test(v),
  database: (v) => typeof v === 'string' && /^(sqlite:\/\/\/\/var\/lib\/joystick\/|sqlite:\/\/\/|postgresql:\/\/)/.test(v),
  plume_config: (v) => v === '/etc/plume/plume.toml',
  channels: (v) =>
    Array.isArray(v) && v.length > 0 && v.every((c) => ['rawhide', 'branched', 'updates', 'cloud'].includes(c)),
  publish_fedimg: (v) => typeof v === 'boolean',
  publish_image_uploader: (v) => typeof v === 'boolean',
  max_parallel_jobs: (v) => Number.isInteger(v) && v >= 1 && v <= 16,
};
const TLS_FILES = {
  ca_cert: '/etc/fedora-messaging/cacert.pem',
  certfile: '/etc/fedora-messaging/joystick-cert.pem',
  keyfile: '/etc/fedora-messaging/joystick-key.pem',
};
const CREDENTIALS = /^\s*(aws_secret_access_key|aws_access_key_id|secret_key|access_id|password)\s*=|AKIA[0-9A-Z]{16}|BEGIN [A-Z ]*PRIVATE KEY/im;

let failures = 0;
let checks = 0;
function check(ok, what) {
  checks += 1;
  if (!ok) {
    failures += 1;
    console.error(`  FAIL ${what}`);
  }
}

let certs;
function throwawayCerts(dir) {
  if (certs) return certs;
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=joystick-check',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  certs = { ca_cert: cert, certfile: cert, keyfile: key };
  return certs;
}

const work = mkdtempSync(join(tmpdir(), 'joystick-config-check-'));
try {
  for (const dir of process.argv.slice(2)) {
    const busPath = join(dir, 'joystick.toml');
    const plumePath = join(dir, 'plume.toml');
    const label = dir;
    const busText = readFileSync(busPath, 'utf8');
    const plumeText = readFileSync(plumePath, 'utf8');

    let bus;
    try {
      bus = parseBusConfig(busText, busPath);
      check(true, '');
    } catch (err) {
      check(false, `${busPath}: ${err.message}`);
      continue;
    }
    const cc = bus.consumer_config;
    if (parseConsumerConfig) {
      try {
        parseConsumerConfig(cc, busPath);
        check(true, '');
      } catch (err) {
        check(false, err.message);
      }
    } else {
      for (const key of Object.keys(cc)) check(key in CONSUMER_CONFIG || key === 'status_url', `${label}: [consumer_config] unknown key ${key}`);
    }
    for (const [key, ok] of Object.entries(CONSUMER_CONFIG)) {
      check(key in cc && ok(cc[key]), `${label}: [consumer_config] ${key} = ${JSON.stringify(cc[key])} is missing or invalid`);
    }
    check(/^org\.fedoraproject\.(dev|stg|prod)$/.test(bus.topic_prefix), `${label}: topic_prefix ${bus.topic_prefix}`);
    const keys = bus.bindings.flatMap((b) => b.routing_keys);
    check(keys.length > 0, `${label}: no bindings`);
    for (const k of keys) {
      check(k === `${bus.topic_prefix}.pungi.compose.status.change`, `${label}: binding ${k} is not ${bus.topic_prefix}.pungi.compose.status.change`);
    }
    for (const b of bus.bindings) {
      const q = bus.queues[b.queue];
      check(q?.durable === true && q.auto_delete === false && q.exclusive === false, `${label}: queue ${b.queue} must be declared durable and shared`);
    }
    if (bus.amqp_url.startsWith('amqps:')) {
      for (const [k, path] of Object.entries(TLS_FILES)) check(bus.tls[k] === path, `${label}: tls.${k} should be ${path}`);
    }
    check(!CREDENTIALS.test(busText) && !CREDENTIALS.test(plumeText), `${label}: a credential in a config file`);
    check(!/:[^:@/]+@/.test(bus.amqp_url.replace('guest:guest@', '')), `${label}: a password in amqp_url`);

    let plume;
    try {
      plume = parseConfig(plumeText, plumePath);
      check(true, '');
    } catch (err) {
      check(false, `${plumePath}: ${err.message}`);
      continue;
    }
    check(plume.state.path?.startsWith('/var/lib/joystick/') ?? false, `${label}: plume [state] path must be under /var/lib/joystick`);
    check(plume.source.allowed_hosts.length > 0, `${label}: plume [source] allowed_hosts is empty`);
    check(plume.aws.endpoint === undefined, `${label}: plume [aws] endpoint is set (tests only)`);

    if (existsSync(cli)) {
      // The start command's own dry run, on a copy with its paths pointing at stand-ins.
      const sub = mkdtempSync(join(work, 'run-'));
      const copy = parse(busText);
      const plumeCopy = parse(plumeText);
      plumeCopy.state = { path: join(sub, 'plume-state.db'), records_dir: join(sub, 'releases') };
      writeFileSync(join(sub, 'plume.toml'), stringify(plumeCopy));
      copy.consumer_config.plume_config = join(sub, 'plume.toml');
      if (String(copy.consumer_config.database).startsWith('sqlite:')) {
        copy.consumer_config.database = `sqlite:///${join(sub, 'joystick.db')}`;
      }
      if (copy.tls) copy.tls = { ...throwawayCerts(work) };
      writeFileSync(join(sub, 'joystick.toml'), stringify(copy));
      const run = spawnSync(process.execPath, [joystickBin, 'run', '--config', join(sub, 'joystick.toml'), '--check'], {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, AWS_ACCESS_KEY_ID: 'check', AWS_SECRET_ACCESS_KEY: 'check' },
      });
      check(run.status === 0, `${label}: joystick run --config ... --check exited ${run.status}: ${(run.stderr || run.stdout).trim()}`);
      console.log(`  ${label}: joystick run --check ${run.status === 0 ? 'ok' : 'FAILED'}`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(
  `  ${checks} config checks, ${failures} failed${existsSync(cli) ? '' : ' (joystick CLI not built yet: `joystick run --check` skipped)'}`,
);
process.exit(failures > 0 ? 1 : 0);
