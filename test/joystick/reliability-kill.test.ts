import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pungiBody } from '../../tools/reliability/pungi.js';
import { openPungiPublisher } from '../../tools/reliability/broker.js';
import { recordScenario } from '../../tools/reliability/results.js';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';
import {
  missingFrom,
  openScenario,
  outcomeOf,
  settle,
  type Outcome,
  type Scenario,
} from '../support/reliability.js';
import { startWorld, type World } from '../support/world.js';

/*
 * kill -9 of `joystick run` during each step of a release, then a restart with the same configuration:
 * the job resumes under a new lease, and the end state (AWS inventory, announcements) is the one an
 * undisturbed run leaves. Each step is held by an emulator latency rule on its AWS operation, and the
 * process is killed while that call is in flight; "announce" is held by stalling the broker's
 * confirmations in a TCP proxy between joystick and RabbitMQ, and killed while a publish awaits its confirm.
 */

const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'];
const FILE = 'test/joystick/reliability-kill.test.ts';
let world: World;
let compose: SampleCompose & { url: string };
let baseline: Outcome;
const scenarios: Scenario[] = [];

async function scenario(): Promise<Scenario> {
  await world.emulator.reset();
  const s = await openScenario(world, { regions: REGIONS, arches: ['x86_64'] });
  scenarios.push(s);
  return s;
}

async function announceCompose(s: Scenario): Promise<void> {
  const pub = await openPungiPublisher(s.prefix);
  await pub.publish(pungiBody(compose.composeId, compose.url, 'FINISHED'));
  await pub.close();
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  compose = await world.compose({ rawSize: 32 * 2 ** 20, dataFraction: 0.25, arches: ['x86_64'] });
  // The undisturbed run every scenario is compared with.
  const s = await scenario();
  await s.start();
  await announceCompose(s);
  // upload started x2, upload completed x2, copy x4, publish x6, fedora-image-uploader x1
  await settle(s.ledger, 15);
  await s.joystick.stop();
  baseline = await outcomeOf(world, REGIONS, s.ledger);
});

afterAll(async () => {
  for (const s of scenarios) await s.close();
  await world?.close();
});

describe('the undisturbed run', () => {
  it('publishes 6 AMIs and announces each once (the baseline)', () => {
    expect(baseline.messages).toHaveLength(15);
    expect(baseline.raw.images).toHaveLength(REGIONS.length * 2);
    expect(baseline.raw.images.every((i) => i.public && i.state === 'available')).toBe(true);
    expect(baseline.raw.orphans).toEqual([]);
  });
});

describe.each([
  ['upload', 'PutSnapshotBlock', 5],
  ['register', 'RegisterImage', 0],
  ['replicate', 'CopyImage', 1],
  ['publish', 'ModifyImageAttribute', 1],
])('kill -9 during %s', (step, operation, skip) => {
  it('resumes after a restart: no duplicate or orphaned AMI or snapshot, every message once', async () => {
    const t0 = Date.now();
    const s = await scenario();
    const first = await s.start();
    const rule = world.emulator.addFault({ operation, kind: 'latency', latencyMs: 3000, skip });
    await announceCompose(s);
    const deadline = Date.now() + 60_000;
    while (!world.emulator.faultStats().some((f) => f.id === rule && f.fired > 0)) {
      if (Date.now() > deadline) throw new Error(`joystick never reached ${operation}: ${first.tail()}`);
      await sleep(20);
    }
    await sleep(100);
    await first.kill9();
    world.emulator.clearFaults();
    expect((await first.exited).signal).toBe('SIGKILL');
    const before = await s.store((st) => st.jobs());
    expect(before.map((j) => j.state)).toEqual(['running']);

    const second = await s.start();
    await settle(s.ledger, baseline.messages.length);
    await second.stop();
    const got = await outcomeOf(world, REGIONS, s.ledger);

    // AWS: the same images, public, with their snapshots, and nothing else (no orphan, no duplicate name).
    expect(got.inventory).toEqual(baseline.inventory);
    expect(got.raw.orphans).toEqual([]);
    expect(got.raw.duplicateNames).toEqual([]);
    // The bus: every announcement of the undisturbed run, each under one message id, none sent twice.
    expect(missingFrom(baseline.messages, got.messages)).toEqual([]);
    expect(got.messages).toEqual(baseline.messages);
    expect(s.ledger.duplicates()).toEqual([]);
    expect(s.ledger.extraCopies().size).toBe(0);
    // The job was taken over by the restarted process and finished there.
    const [job] = await s.store((st) => st.jobs());
    expect(job).toMatchObject({ state: 'complete', attempts: 2 });
    expect(second.count(/^job finished$/)).toBe(1);
    if (step === 'upload') {
      // The interrupted upload's snapshot was found and removed before uploading again.
      expect(second.count(/removing a snapshot left by an interrupted upload/)).toBe(1);
    }
    recordScenario({
      test: `${FILE} > kill -9 during ${step}`,
      fault: `joystick kill -9 during ${step} (${operation} in flight)`,
      injected: 1,
      outcome: `resumed after restart; ${got.raw.images.length} AMIs, 0 orphans`,
      lost: missingFrom(baseline.messages, got.messages).length,
      duplicates: s.ledger.duplicates().length,
      resent: [...s.ledger.extraCopies().values()].reduce((a, b) => a + b, 0),
      durationMs: Date.now() - t0,
    });
  });
});

describe('kill -9 during announce', () => {
  it('sends what was not confirmed after a restart, under the same message ids; nothing lost or duplicated', async () => {
    const t0 = Date.now();
    const s = await scenario();
    const first = await s.start();
    await announceCompose(s);
    // Once the release is replicating (its "upload started" messages long confirmed), stall the broker's
    // confirmations: the first announcement of the finished release then reaches the broker (and the
    // ledger), but joystick never learns that it did.
    const deadline = Date.now() + 60_000;
    while (!world.emulator.calls().some((c) => c.operation === 'CopyImage')) {
      if (Date.now() > deadline) throw new Error(`joystick never replicated: ${first.tail()}`);
      await sleep(20);
    }
    expect(s.ledger.messages()).toHaveLength(2);
    s.amqp.hold('downstream');
    await s.ledger.waitFor(
      (l) => l.messages((d) => d.topic === 'fedimg.image.upload' && d.body.status === 'completed').length > 0,
      60_000,
      'the first upload-completed announcement',
    );
    await sleep(500);
    const beforeKill = s.ledger.messages().length;
    await first.kill9();
    s.amqp.release();
    expect(beforeKill).toBe(3);
    const unsent = await s.store((st) => st.outbox({ unsent: true }));
    expect(unsent.length).toBeGreaterThan(0);

    const second = await s.start();
    await settle(s.ledger, baseline.messages.length);
    await second.stop();
    const got = await outcomeOf(world, REGIONS, s.ledger);

    expect(got.inventory).toEqual(baseline.inventory);
    expect(missingFrom(baseline.messages, got.messages)).toEqual([]);
    expect(got.messages).toEqual(baseline.messages);
    expect(s.ledger.duplicates()).toEqual([]);
    // The one message the broker took but joystick never saw confirmed is sent again with its id, and only
    // that one: the outbox sends one message at a time and marks it sent as soon as it is confirmed.
    const resent = [...s.ledger.extraCopies().values()].reduce((a, b) => a + b, 0);
    expect(resent).toBe(1);
    expect(await s.store((st) => st.outbox({ unsent: true }))).toEqual([]);
    recordScenario({
      test: `${FILE} > kill -9 during announce`,
      fault: 'joystick kill -9 during announce (a publish awaiting its confirm)',
      injected: 1,
      outcome: `unconfirmed messages sent after restart; ${resent} re-sent with its original id`,
      lost: missingFrom(baseline.messages, got.messages).length,
      duplicates: s.ledger.duplicates().length,
      resent,
      durationMs: Date.now() - t0,
    });
  });
});
