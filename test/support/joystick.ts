import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { World } from './world.js';
import { AMQP_URL } from './rabbit.js';

export interface JoystickSetup {
  prefix: string;
  queue: string;
  database: string;
  regions: string[];
  arches?: string[];
  channels?: string[];
  extra?: string;
  http?: string;
  maxParallelJobs?: number;
}

/** Write a fedora-messaging config.toml for joystick against the world's emulator and compose host. */
export async function writeJoystickConfig(
  world: World,
  s: JoystickSetup,
  file = 'joystick.toml',
): Promise<string> {
  const path = join(world.dir, file);
  await writeFile(
    path,
    `amqp_url = "${AMQP_URL}"
topic_prefix = "${s.prefix}"
publish_exchange = "amq.topic"

[client_properties]
app = "joystick-test"

[queues.${s.queue}]
durable = true
auto_delete = false
exclusive = false
arguments = {}

[[bindings]]
queue = "${s.queue}"
exchange = "amq.topic"
routing_keys = ["${s.prefix}.pungi.compose.status.change"]

[consumer_config]
system = "fedora"
database = "${s.database}"
http_listen = "${s.http ?? '127.0.0.1:0'}"
channels = ${JSON.stringify(s.channels ?? ['cloud', 'branched', 'rawhide', 'updates'])}
arches = ${JSON.stringify(s.arches ?? ['x86_64', 'aarch64'])}
max_parallel_jobs = ${s.maxParallelJobs ?? 2}
poll_seconds = 0.2
lease_seconds = 10
metadata_retry_minutes = 0.05
status_url = "http://status.example/status"
${s.extra ?? ''}

[consumer_config.plume.aws]
base_region = "${s.regions[0]}"
regions = ${JSON.stringify(s.regions)}
endpoint = "${world.emulator.endpoint}"
poll_min_ms = 20
poll_max_ms = 200
image_wait_minutes = 1
snapshot_wait_minutes = 1
max_attempts = 6
upload_concurrency = 8

[consumer_config.plume.source]
allowed_hosts = ["127.0.0.1"]
attempts = 3
idle_timeout_seconds = 10
`,
  );
  return path;
}
