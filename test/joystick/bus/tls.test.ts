import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BusConnection,
  buildConnectPlan,
  defaultBusConfig,
  type BusConfig,
} from '../../../src/joystick/bus/index.js';
import { PlumeError } from '../../../src/shared/errors.js';

/*
 * RabbitMQ here has no TLS listener, so a throwaway CA, server and client certificate are made with
 * openssl, and a plain TLS server stands in for the broker: enough to see that joystick verifies the
 * server, presents its client certificate, and says EXTERNAL, as fedora-messaging does.
 */

const run = promisify(execFile);
let dir: string;
const file = (name: string) => join(dir, name);

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args);
}

async function makeCa(name: string): Promise<void> {
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    file(`${name}.key`),
    '-out',
    file(`${name}.pem`),
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
}

async function makeLeaf(name: string, ca: string, ext: string): Promise<void> {
  await openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    file(`${name}.key`),
    '-out',
    file(`${name}.csr`),
    '-subj',
    `/CN=${name}`,
  );
  await writeFile(file(`${name}.ext`), ext);
  await openssl(
    'x509',
    '-req',
    '-in',
    file(`${name}.csr`),
    '-CA',
    file(`${ca}.pem`),
    '-CAkey',
    file(`${ca}.key`),
    '-CAcreateserial',
    '-out',
    file(`${name}.pem`),
    '-days',
    '1',
    '-extfile',
    file(`${name}.ext`),
  );
}

function tlsConfig(url: string, tls: Partial<BusConfig['tls']>): BusConfig {
  const config = defaultBusConfig();
  config.amqp_url = url;
  config.tls = { ca_cert: null, certfile: null, keyfile: null, ...tls };
  return config;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bus-tls-'));
  await makeCa('test-ca');
  await makeCa('other-ca');
  await makeLeaf('localhost', 'test-ca', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await makeLeaf('joystick-test-client', 'test-ca', 'extendedKeyUsage=clientAuth\n');
  await makeLeaf('impostor', 'other-ca', 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('TLS options', () => {
  it('are built from [tls] as fedora-messaging builds them', async () => {
    const plan = await buildConnectPlan(
      tlsConfig(
        'amqps://user:pw@broker.example.org/%2Fpubsub?connection_attempts=3&retry_delay=5&heartbeat=30',
        {
          ca_cert: file('test-ca.pem'),
          certfile: file('joystick-test-client.pem'),
          keyfile: file('joystick-test-client.key'),
        },
      ),
      { connectionName: 'joystick-tls' },
    );
    expect(plan.tls).toBe(true);
    expect(plan.target).toMatchObject({
      protocol: 'amqps',
      hostname: 'broker.example.org',
      port: 5671,
      vhost: '%2Fpubsub',
      heartbeat: 30,
    });
    expect(plan.connectionAttempts).toBe(3);
    expect(plan.retryDelayMs).toBe(5000);
    expect(plan.display).toBe(
      'amqps://user:redacted@broker.example.org/%2Fpubsub?connection_attempts=3&retry_delay=5&heartbeat=30',
    );
    const o = plan.socketOptions;
    expect(o.ca).toEqual([await readFile(file('test-ca.pem'))]);
    expect(o.cert).toEqual(await readFile(file('joystick-test-client.pem')));
    expect(o.key).toEqual(await readFile(file('joystick-test-client.key')));
    expect(o.minVersion).toBe('TLSv1.2');
    expect(o.rejectUnauthorized).toBe(true);
    // with a client certificate fedora-messaging authenticates with SASL EXTERNAL
    expect(o.credentials?.mechanism).toBe('EXTERNAL');
    expect(o.clientProperties).toMatchObject({ app: 'Unknown', connection_name: 'joystick-tls' });
  });

  it('use the URL credentials when there is no client certificate', async () => {
    const plan = await buildConnectPlan(tlsConfig('amqps://u:p@h:5999/', { ca_cert: file('test-ca.pem') }));
    expect(plan.socketOptions.credentials).toBeUndefined();
    expect(plan.socketOptions.cert).toBeUndefined();
    expect(plan.target).toMatchObject({ username: 'u', password: 'p', port: 5999, vhost: '/' });
  });

  it('are ignored, with a warning, for amqp:// (as fedora-messaging ignores them)', async () => {
    const plan = await buildConnectPlan(tlsConfig('amqp://', { ca_cert: file('test-ca.pem') }));
    expect(plan.tls).toBe(false);
    expect(plan.socketOptions.ca).toBeUndefined();
    expect(plan.target).toMatchObject({ protocol: 'amqp', hostname: 'localhost', port: 5672 });
    expect(plan.warnings).toEqual([expect.stringMatching(/apply to amqps:\/\/ URLs only/)]);
  });

  const failing: [string, () => Promise<Partial<BusConfig['tls']>>, RegExp][] = [
    [
      'a missing CA file',
      () => Promise.resolve({ ca_cert: '/nonexistent/ca.pem' }),
      /^tls\.ca_cert: cannot read \/nonexistent\/ca\.pem: ENOENT$/,
    ],
    [
      'a CA file that is not PEM',
      async () => {
        await writeFile(file('garbage.pem'), 'not a certificate\n');
        return { ca_cert: file('garbage.pem') };
      },
      /^tls\.ca_cert .*garbage\.pem: not a PEM certificate bundle/,
    ],
    [
      "a key that is not the certificate's",
      () => Promise.resolve({ certfile: file('joystick-test-client.pem'), keyfile: file('impostor.key') }),
      /^tls\.keyfile .*impostor\.key is not the key of tls\.certfile .*joystick-test-client\.pem$/,
    ],
    [
      'a certificate file that is not a certificate',
      () =>
        Promise.resolve({
          certfile: file('joystick-test-client.key'),
          keyfile: file('joystick-test-client.key'),
        }),
      /^tls\.certfile .*: not a PEM certificate/,
    ],
  ];
  it.each(failing)('fail early on %s, naming the setting', async (_name, tls, expected) => {
    const err = await buildConnectPlan(tlsConfig('amqps://h/', await tls())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlumeError);
    expect((err as PlumeError).kind).toBe('usage');
    expect((err as PlumeError).message).toMatch(expected);
  });

  it("refuse pika's ssl_options URL parameter and unknown parameters", async () => {
    await expect(buildConnectPlan(tlsConfig('amqps://h/?ssl_options=%7B%7D', {}))).rejects.toThrow(
      /ssl_options in the URL is not supported/,
    );
    await expect(buildConnectPlan(tlsConfig('amqp://h/?bogus=1', {}))).rejects.toThrow(
      /unknown URL parameter bogus/,
    );
    await expect(buildConnectPlan(tlsConfig('amqp://h/?heartbeat=x', {}))).rejects.toThrow(
      /heartbeat=x is not a non-negative integer/,
    );
  });
});

describe('a TLS handshake with a stand-in broker', () => {
  let server: Server;
  let port: number;
  const clients: (string | undefined)[] = [];

  beforeAll(async () => {
    server = createServer({
      key: await readFile(file('localhost.key')),
      cert: await readFile(file('localhost.pem')),
      ca: await readFile(file('test-ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      const cn = socket.getPeerCertificate().subject?.CN;
      clients.push(Array.isArray(cn) ? cn.join(',') : cn);
      socket.destroy(); // not a broker: the handshake is what is being tested
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('verifies the server and presents the client certificate', async () => {
    clients.length = 0;
    const config = tlsConfig(`amqps://localhost:${port}/`, {
      ca_cert: file('test-ca.pem'),
      certfile: file('joystick-test-client.pem'),
      keyfile: file('joystick-test-client.key'),
    });
    // the stand-in hangs up after the handshake, so connecting fails, but only after TLS succeeded
    await expect(BusConnection.open(config)).rejects.toBeInstanceOf(PlumeError);
    expect(clients).toEqual(['joystick-test-client']);
  });

  it('refuses a server whose certificate another CA signed', async () => {
    clients.length = 0;
    const config = tlsConfig(`amqps://localhost:${port}/`, {
      ca_cert: file('other-ca.pem'),
      certfile: file('joystick-test-client.pem'),
      keyfile: file('joystick-test-client.key'),
    });
    const err = (await BusConnection.open(config).catch((e: unknown) => e)) as PlumeError;
    expect(err).toBeInstanceOf(PlumeError);
    expect(err.kind).toBe('credentials');
    expect(err.message).toMatch(/^TLS with the AMQP broker localhost:\d+ failed: /);
    expect(clients).toEqual([]);
  });

  it('checks the host name against the server certificate', async () => {
    clients.length = 0;
    // the certificate names localhost only
    const config = tlsConfig(`amqps://127.0.0.1:${port}/`, { ca_cert: file('test-ca.pem') });
    const err = (await BusConnection.open(config).catch((e: unknown) => e)) as PlumeError;
    expect(err.message).toMatch(/TLS with the AMQP broker 127\.0\.0\.1:\d+ failed: .*altnames/);
  });
});
