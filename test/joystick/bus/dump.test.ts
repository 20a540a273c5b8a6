import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMessage,
  iterateDumpFile,
  parseDump,
  parseDumpLine,
  readDumpFile,
  toDump,
  toDumpLine,
} from '../../../src/joystick/bus/index.js';
import { PlumeError } from '../../../src/shared/errors.js';

// What fedora-messaging's message.dumps() writes for a Pungi message (sort_keys=True, default separators).
const FEDORA_LINE =
  '{"body": {"compose_id": "Fedora-40-20240414.0", "location": "https://kojipkgs.fedoraproject.org/compose/40/Fedora-40-20240414.0/compose", "status": "FINISHED"}, ' +
  '"headers": {"fedora_messaging_schema": "pungi.compose.status.change.v1", "fedora_messaging_severity": 20, "priority": 0, "sent-at": "2024-04-14T10:00:00+00:00"}, ' +
  '"id": "2b7f1c54-7a1e-4b0a-9a43-5a3d5b1f2e10", "priority": 0, "queue": null, "topic": "org.fedoraproject.prod.pungi.compose.status.change"}';

// What datagrepper's as_fedora_message_dict() serves (older versions have no "priority").
const DATAGREPPER_LINE = JSON.stringify({
  body: { msg: { compose_id: 'Fedora-Cloud-30-20190611.0', status: 'FINISHED' } },
  headers: {},
  id: '2019-1f4b8f7e-4a51-4d5e-8a6e-4b6b5b0b6a51',
  queue: null,
  topic: 'org.fedoraproject.prod.pungi.compose.status.change',
});

describe('dump lines', () => {
  it('read a line fedora-messaging wrote and write it back byte for byte', () => {
    const m = parseDumpLine(FEDORA_LINE);
    expect(m).toEqual({
      id: '2b7f1c54-7a1e-4b0a-9a43-5a3d5b1f2e10',
      topic: 'org.fedoraproject.prod.pungi.compose.status.change',
      headers: {
        fedora_messaging_schema: 'pungi.compose.status.change.v1',
        fedora_messaging_severity: 20,
        priority: 0,
        'sent-at': '2024-04-14T10:00:00+00:00',
      },
      body: {
        compose_id: 'Fedora-40-20240414.0',
        location: 'https://kojipkgs.fedoraproject.org/compose/40/Fedora-40-20240414.0/compose',
        status: 'FINISHED',
      },
      severity: 20,
      schema: 'pungi.compose.status.change.v1',
      queue: null,
      priority: 0,
    });
    expect(toDumpLine(m)).toBe(FEDORA_LINE);
  });

  it('round-trip a message joystick built', () => {
    const m = createMessage({
      topic: 'fedimg.image.publish',
      body: { z: [1, { b: 'ü', a: null }], a: 'x' },
      severity: 40,
      usernames: ['u'],
      priority: 2,
    });
    const line = toDumpLine(m);
    expect(line).toMatch(/^\{"body": \{"a": "x", "z": \[1, \{"a": null, "b": "ü"\}\]\}, "headers": \{/);
    expect(line).toContain('"priority": 2, "queue": null, "topic": "fedimg.image.publish"}');
    expect(parseDumpLine(line)).toEqual({ ...m, queue: null });
  });

  it('read datagrepper output, filling what fedora-messaging fills', () => {
    const m = parseDumpLine(DATAGREPPER_LINE);
    expect(m).toMatchObject({
      id: '2019-1f4b8f7e-4a51-4d5e-8a6e-4b6b5b0b6a51',
      schema: 'base.message',
      severity: 20,
      body: { msg: { compose_id: 'Fedora-Cloud-30-20190611.0' } },
      headers: { fedora_messaging_schema: 'base.message', fedora_messaging_severity: 20, priority: 0 },
    });
    expect(m.headers['sent-at']).toMatch(/\+00:00$/);
    expect(m.priority).toBeUndefined();
  });

  it('need only topic and body; a missing id is generated', () => {
    const m = parseDumpLine('{"topic": "t", "body": {}}');
    expect(m.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  const bad: [string, string, RegExp][] = [
    ['not JSON', '{"topic": ', /^line 3: not JSON/],
    ['not an object', '[1]', /^line 3: expected a JSON object$/],
    ['no topic', '{"body": {}}', /^line 3: no "topic"$/],
    ['topic type', '{"topic": 1, "body": {}}', /"topic" is not a string/],
    ['no body', '{"topic": "t"}', /^line 3: no "body"$/],
    ['body type', '{"topic": "t", "body": []}', /"body" is not a JSON object/],
    ['id type', '{"topic": "t", "body": {}, "id": 5}', /"id" is not a string/],
    ['queue type', '{"topic": "t", "body": {}, "queue": 5}', /"queue" is not a string or null/],
    ['priority type', '{"topic": "t", "body": {}, "priority": "high"}', /"priority" is not an integer/],
    ['headers type', '{"topic": "t", "body": {}, "headers": 1}', /"headers" is not a JSON object/],
    [
      'severity',
      '{"topic": "t", "body": {}, "headers": {"fedora_messaging_severity": 15}}',
      /fedora_messaging_severity is not 10, 20, 30 or 40/,
    ],
    [
      'schema type',
      '{"topic": "t", "body": {}, "headers": {"fedora_messaging_schema": 1}}',
      /headers.fedora_messaging_schema is not a string/,
    ],
  ];
  it.each(bad)('reject %s, with the line number', (_name, line, expected) => {
    try {
      parseDumpLine(line, { line: 3 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(PlumeError);
      expect((err as PlumeError).kind).toBe('input');
      expect((err as PlumeError).message).toMatch(expected);
    }
  });
});

describe('dump files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bus-dump-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('skip blank lines and keep order', async () => {
    const a = createMessage({ topic: 'a', body: { n: 1 } });
    const b = createMessage({ topic: 'b', body: { n: 2 } });
    const path = join(dir, 'ok.jsonl');
    await writeFile(path, `\n${toDump([a])}   \n\r\n${FEDORA_LINE}\r\n${toDumpLine(b)}`);
    const read = await readDumpFile(path);
    expect(read.map((m) => m.topic)).toEqual([
      'a',
      'org.fedoraproject.prod.pungi.compose.status.change',
      'b',
    ]);
    // fedora-messaging dumps an unset priority as 0, so it reads back as 0
    expect(read[0]).toEqual({ ...a, queue: null, priority: 0 });
    const lines: number[] = [];
    for await (const { line } of iterateDumpFile(path)) lines.push(line);
    expect(lines).toEqual([2, 5, 6]);
    expect(parseDump(`${FEDORA_LINE}\n\n`)).toHaveLength(1);
  });

  it('report the file and line of a bad line', async () => {
    const path = join(dir, 'bad.jsonl');
    await writeFile(path, `${FEDORA_LINE}\n\n{"topic": "t"}\n`);
    await expect(readDumpFile(path)).rejects.toThrow(`${path}:3: no "body"`);
    expect(() => parseDump(`${FEDORA_LINE}\nnope`, 'mem')).toThrow(/^mem:2: not JSON/);
  });

  it('report a missing file', async () => {
    await expect(readDumpFile(join(dir, 'missing.jsonl'))).rejects.toThrow(
      /cannot read .*missing\.jsonl: ENOENT/,
    );
  });
});
