/**
 * Serve a Fedora-shaped sample compose over HTTP for trying joystick locally, and write the Pungi message
 * that announces it (a dump line `joystick publish` can send):
 *
 *   node --import tsx tools/sample-compose.ts [--port 8000] [--dir .demo/composes] [--prefix org.fedoraproject.dev]
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serveDirectory } from './compose/http-server.js';
import { writeSampleCompose } from './compose/sample-compose.js';
import { pungiBody } from './reliability/pungi.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8000' },
    dir: { type: 'string', default: join(new URL('..', import.meta.url).pathname, '.demo', 'composes') },
    prefix: { type: 'string', default: 'org.fedoraproject.dev' },
    'compose-id': { type: 'string', default: 'Fedora-Cloud-30-20190611.0' },
  },
});
const composeId = values['compose-id'];
const m = /^(.*)-(\d+)-(\d{8})\.(\d+)$/.exec(composeId);
if (!m) throw new Error(`use a production compose id like Fedora-Cloud-30-20190611.0, not ${composeId}`);
const [, short, version, date, respin] = m as unknown as [string, string, string, string, string];
if (!existsSync(join(values.dir, composeId, 'compose', 'metadata', 'images.json'))) {
  process.stderr.write(`generating ${composeId} (a sparse 1 GiB image per arch)...\n`);
  await writeSampleCompose({
    dir: values.dir,
    composeId,
    releaseShort: short,
    version,
    date,
    respin: Number(respin),
    rawSize: 2 ** 30,
    dataFraction: 0.05,
    arches: ['x86_64', 'aarch64'],
  });
}
const server = await serveDirectory(values.dir, Number(values.port));
const location = `${server.url}/${composeId}/compose`;
const message = {
  id: '5b1f1d0e-6c1f-4a53-9b0e-2f7d3f0c9a11',
  topic: `${values.prefix}.pungi.compose.status.change`,
  headers: {
    fedora_messaging_schema: 'base.message',
    fedora_messaging_severity: 20,
    'sent-at': new Date().toISOString().replace(/\.\d+Z$/, '+00:00'),
  },
  body: pungiBody(composeId, location, 'FINISHED'),
};
const file = join(values.dir, '..', 'pungi-finished.jsonl');
await writeFile(file, `${JSON.stringify(message)}\n`);
process.stdout.write(`serving ${location}\nthe Pungi message announcing it is in ${file}\n`);
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
