import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONFIG_ENV_VAR,
  defaultBusConfig,
  loadBusConfig,
  parseBusConfig,
  validateBusConfig,
} from '../../../src/joystick/bus/index.js';
import { PlumeError } from '../../../src/shared/errors.js';

function errorOf(fn: () => unknown): PlumeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PlumeError);
    return err as PlumeError;
  }
  throw new Error('expected an error');
}

const parse = (text: string) => parseBusConfig(text, 'test.toml');
const fail = (text: string) => errorOf(() => parse(text));

describe('fedora-messaging defaults', () => {
  it('match fedora_messaging/config.py DEFAULTS', () => {
    const c = defaultBusConfig();
    expect(c.amqp_url).toBe('amqp://?connection_attempts=3&retry_delay=5');
    expect(c.publish_exchange).toBe('amq.topic');
    expect(c.topic_prefix).toBe('');
    expect(c.publish_priority).toBeNull();
    expect(c.passive_declares).toBe(false);
    expect(c.exchanges).toEqual({
      'amq.topic': { type: 'topic', durable: true, auto_delete: false, arguments: {} },
    });
    expect(c.queues).toEqual({ '': { durable: false, auto_delete: true, exclusive: true, arguments: {} } });
    expect(c.bindings).toEqual([{ queue: '', exchange: 'amq.topic', routing_keys: ['#'] }]);
    expect(c.qos).toEqual({ prefetch_size: 0, prefetch_count: 10 });
    expect(c.callback).toBeNull();
    expect(c.consumer_config).toEqual({});
    expect(c.tls).toEqual({ ca_cert: null, certfile: null, keyfile: null });
    expect(c.client_properties.app).toBe('Unknown');
    expect(Object.keys(c.client_properties).sort()).toEqual(['app', 'information', 'product', 'version']);
  });

  it('apply to an empty file', () => {
    expect(parse('')).toEqual(defaultBusConfig());
  });

  it('are returned fresh each time', () => {
    const a = defaultBusConfig();
    a.qos.prefetch_count = 1;
    expect(defaultBusConfig().qos.prefetch_count).toBe(10);
  });
});

describe('a Fedora-style config.toml', () => {
  const text = `
amqp_url = "amqps://joystick:s3cret@rabbitmq.fedoraproject.org/%2Fpubsub"
topic_prefix = "org.fedoraproject.prod"
publish_exchange = "amq.topic"
passive_declares = true
callback = "joystick:main"
publish_priority = 5

[tls]
ca_cert = "/etc/fedora-messaging/cacert.pem"
keyfile = "/etc/fedora-messaging/joystick-key.pem"
certfile = "/etc/fedora-messaging/joystick-cert.pem"

[client_properties]
app = "joystick"
app_url = "https://example.org/plume"
app_contacts_email = ["cloud@lists.fedoraproject.org"]

[queues."joystick.prod"]
durable = true
auto_delete = false
exclusive = false
arguments = { "x-queue-type" = "quorum" }

[[bindings]]
queue = "joystick.prod"
exchange = "amq.topic"
routing_keys = ["org.fedoraproject.prod.pungi.compose.status.change"]

[qos]
prefetch_count = 25

[consumer_config]
providers = ["aws"]
[consumer_config.aws]
regions = ["us-east-1"]

[log_config]
version = 1
[log_config.root]
level = "WARNING"
`;

  it('takes a list of strings in [client_properties], as Fedora writes app_contacts_email, or a string', () => {
    expect(parse(text).client_properties.app_contacts_email).toEqual(['cloud@lists.fedoraproject.org']);
    const one = parse(text.replace('["cloud@lists.fedoraproject.org"]', '"cloud@lists.fedoraproject.org"'));
    expect(one.client_properties.app_contacts_email).toBe('cloud@lists.fedoraproject.org');
    expect(fail(text.replace('["cloud@lists.fedoraproject.org"]', '["a@example.org", 3]')).message).toMatch(
      /client_properties\.app_contacts_email: expected a list of strings, got a list holding the number 3/,
    );
  });

  it('loads, with the file replacing whole tables and the rest defaulted', () => {
    const c = parse(text);
    expect(c.amqp_url).toBe('amqps://joystick:s3cret@rabbitmq.fedoraproject.org/%2Fpubsub');
    expect(c.topic_prefix).toBe('org.fedoraproject.prod');
    expect(c.passive_declares).toBe(true);
    expect(c.callback).toBe('joystick:main');
    expect(c.publish_priority).toBe(5);
    expect(c.tls).toEqual({
      ca_cert: '/etc/fedora-messaging/cacert.pem',
      keyfile: '/etc/fedora-messaging/joystick-key.pem',
      certfile: '/etc/fedora-messaging/joystick-cert.pem',
    });
    expect(c.client_properties).toMatchObject({ app: 'joystick', app_url: 'https://example.org/plume' });
    expect(c.client_properties.product).toBe(defaultBusConfig().client_properties.product);
    expect(c.queues).toEqual({
      'joystick.prod': {
        durable: true,
        auto_delete: false,
        exclusive: false,
        arguments: { 'x-queue-type': 'quorum' },
      },
    });
    expect(c.bindings).toEqual([
      {
        queue: 'joystick.prod',
        exchange: 'amq.topic',
        routing_keys: ['org.fedoraproject.prod.pungi.compose.status.change'],
      },
    ]);
    // a half-given [qos] keeps the other default instead of failing later as fedora-messaging would
    expect(c.qos).toEqual({ prefetch_count: 25, prefetch_size: 0 });
    expect(c.consumer_config).toEqual({ providers: ['aws'], aws: { regions: ['us-east-1'] } });
    expect(c.log_config).toMatchObject({ version: 1 });
    expect(c.exchanges).toEqual(defaultBusConfig().exchanges);
  });

  it('treats top-level keys case-insensitively, like fedora-messaging', () => {
    expect(parse('AMQP_URL = "amqp://h/"\nTopic_Prefix = "x"').topic_prefix).toBe('x');
  });

  it('defaults a binding queue to the server-named queue', () => {
    const c = parse('[[bindings]]\nexchange = "amq.topic"\nrouting_keys = ["a.#"]');
    expect(c.bindings).toEqual([{ queue: '', exchange: 'amq.topic', routing_keys: ['a.#'] }]);
  });

  it('accepts [monitoring] with a port, defaulting the address', () => {
    expect(parse('[monitoring]\nport = 8070').monitoring).toEqual({ address: '', port: 8070 });
  });
});

describe('validation errors name the file, the key and what is expected', () => {
  const cases: [string, string, RegExp][] = [
    [
      'unknown key',
      'amqp_uri = "amqp://x"',
      /unknown configuration key "amqp_uri"; valid keys are amqp_url, /,
    ],
    ['amqp_url type', 'amqp_url = 5', /amqp_url: expected a string, got something else/],
    [
      'amqp_url scheme',
      'amqp_url = "http://u:pw@host/"',
      /amqp_url: expected an amqp:\/\/ or amqps:\/\/ URL, got a http:\/\/ URL/,
    ],
    ['amqp_url not a URL', 'amqp_url = "not a url"', /amqp_url: expected an amqp:\/\/ or amqps:\/\/ URL/],
    ['topic_prefix', 'topic_prefix = true', /topic_prefix: expected a string, got the boolean true/],
    ['publish_exchange', 'publish_exchange = ["a"]', /publish_exchange: expected a string, got an array/],
    [
      'passive_declares',
      'passive_declares = "yes"',
      /passive_declares: expected true or false, got the string "yes"/,
    ],
    [
      'publish_priority range',
      'publish_priority = 300',
      /publish_priority: must be at most 255, got the number 300/,
    ],
    [
      'publish_priority type',
      'publish_priority = 1.5',
      /publish_priority: expected an integer, got the number 1.5/,
    ],
    ['callback', 'callback = 3', /callback: expected a string, got the number 3/],
    ['consumer_config', 'consumer_config = "x"', /consumer_config: expected a table, got the string "x"/],
    ['log_config', 'log_config = 1', /log_config: expected a table, got the number 1/],
    [
      'client_properties reserved',
      '[client_properties]\nproduct = "mine"',
      /client_properties\.product: is reserved/,
    ],
    [
      'client_properties value',
      '[client_properties]\napp = { a = 1 }',
      /client_properties\.app: expected a string, a list of strings, a number or a boolean, got a table/,
    ],
    [
      'qos type',
      '[qos]\nprefetch_count = "10"',
      /qos\.prefetch_count: expected an integer, got the string "10"/,
    ],
    [
      'qos negative',
      '[qos]\nprefetch_size = -1',
      /qos\.prefetch_size: must be at least 0, got the number -1/,
    ],
    ['qos unknown', '[qos]\nprefetch = 1', /qos: unknown key "prefetch"/],
    ['tls type', '[tls]\nca_cert = 1', /tls\.ca_cert: expected a string, got the number 1/],
    [
      'tls half client cert',
      '[tls]\ncertfile = "/c.pem"',
      /tls\.keyfile: missing; a client certificate needs both certfile and keyfile \(certfile is set\)/,
    ],
    ['tls unknown', '[tls]\ncafile = "/x"', /tls: unknown key "cafile"/],
    ['bindings not a list', 'bindings = "x"', /bindings: expected an array, got the string "x"/],
    [
      'binding without exchange',
      '[[bindings]]\nrouting_keys = ["a"]',
      /bindings\[0\]\.exchange: missing, expected a string/,
    ],
    [
      'binding without routing_keys',
      '[[bindings]]\nexchange = "amq.topic"',
      /bindings\[0\]\.routing_keys: missing, expected an array/,
    ],
    [
      'routing_keys not a list',
      '[[bindings]]\nexchange = "e"\nrouting_keys = "a.#"',
      /bindings\[0\]\.routing_keys: expected an array, got the string "a.#"/,
    ],
    [
      'routing key type',
      '[[bindings]]\nexchange = "e"\nrouting_keys = ["a", 2]',
      /bindings\[0\]\.routing_keys\[1\]: expected a string, got the number 2/,
    ],
    ['queues not a table', 'queues = 3', /queues: expected a table, got the number 3/],
    ['queue not a table', '[queues]\nq = 1', /queues\.q: expected a table, got the number 1/],
    [
      'queue missing keys',
      '[queues."my.q"]\ndurable = true',
      /queues\."my\.q"\.auto_delete: missing, expected true or false; queues\."my\.q"\.exclusive: missing, expected true or false; queues\."my\.q"\.arguments: missing, expected a table/,
    ],
    [
      'queue key type',
      '[queues.q]\ndurable = "no"\nauto_delete = false\nexclusive = false\narguments = {}',
      /queues\.q\.durable: expected true or false, got the string "no"/,
    ],
    [
      'queue unknown key',
      '[queues.q]\ndurable = true\nauto_delete = false\nexclusive = false\narguments = {}\nttl = 5',
      /queues\.q: unknown key "ttl"/,
    ],
    [
      'exchange without type',
      '[exchanges.e]\ndurable = true',
      /exchanges\.e\.type: missing, expected a string/,
    ],
    [
      'monitoring without port',
      '[monitoring]\naddress = "::"',
      /monitoring\.port: missing; the port must be defined/,
    ],
  ];

  it.each(cases)('%s', (_name, text, expected) => {
    const err = fail(text);
    expect(err.kind).toBe('usage');
    expect(err.message).toMatch(/^invalid fedora-messaging configuration test\.toml: /);
    expect(err.message).toMatch(expected);
    expect(err.hint).toMatch(/fedora-messaging/);
  });

  it('reports every problem at once', () => {
    const err = fail('topic_prefix = 1\npassive_declares = 2');
    expect(err.message).toMatch(/topic_prefix: .*; passive_declares: /);
  });

  it('never echoes the amqp_url password', () => {
    const err = fail('amqp_url = "ftp://user:hunter2@host/"\ntopic_prefix = 1');
    expect(err.message).not.toContain('hunter2');
    const bad = fail('amqp_url = "amqp://user:hunter2@[bad/"');
    expect(bad.message).not.toContain('hunter2');
  });

  it('reports TOML syntax errors with the position', () => {
    const err = fail('amqp_url = "amqp://x"\nqos = {');
    expect(err.message).toMatch(/^cannot parse test\.toml at line 2, column \d+: Invalid TOML document/);
  });

  it('rejects a document that is not a table', () => {
    expect(errorOf(() => validateBusConfig([], 'x')).message).toMatch(
      /expected a TOML table at the top level, got an array/,
    );
  });
});

describe('loading the file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bus-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads an explicit path', async () => {
    const path = join(dir, 'a.toml');
    await writeFile(path, 'topic_prefix = "org.fedoraproject.stg"\n');
    const loaded = await loadBusConfig({ path, env: {} });
    expect(loaded).toMatchObject({ path, config: { topic_prefix: 'org.fedoraproject.stg' } });
  });

  it('honours FEDORA_MESSAGING_CONF when no path is given', async () => {
    const path = join(dir, 'env.toml');
    await writeFile(path, 'publish_exchange = "zmq.topic"\n');
    const loaded = await loadBusConfig({ env: { [CONFIG_ENV_VAR]: path } });
    expect(loaded.path).toBe(path);
    expect(loaded.config.publish_exchange).toBe('zmq.topic');
  });

  it('prefers the explicit path to the environment', async () => {
    const path = join(dir, 'a.toml');
    const loaded = await loadBusConfig({ path, env: { [CONFIG_ENV_VAR]: join(dir, 'env.toml') } });
    expect(loaded.path).toBe(path);
  });

  it('fails on a missing explicit path, naming it', async () => {
    const path = join(dir, 'missing.toml');
    await expect(loadBusConfig({ path, env: {} })).rejects.toThrow(
      `cannot read the fedora-messaging configuration ${path} (given): ENOENT`,
    );
  });

  it('fails on a missing FEDORA_MESSAGING_CONF path, naming the variable', async () => {
    const path = join(dir, 'nope.toml');
    await expect(loadBusConfig({ env: { [CONFIG_ENV_VAR]: path } })).rejects.toThrow(
      /named by FEDORA_MESSAGING_CONF\): ENOENT/,
    );
  });

  it('names the file in validation errors', async () => {
    const path = join(dir, 'bad.toml');
    await writeFile(path, 'passive_declares = 1\n');
    await expect(loadBusConfig({ path, env: {} })).rejects.toThrow(
      `invalid fedora-messaging configuration ${path}: passive_declares`,
    );
  });
});
