import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeConnections,
  openPungiPublisher,
  queueHeld,
  queueReady,
} from '../../tools/reliability/broker.js';
import { pungiBody } from '../../tools/reliability/pungi.js';
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
 * The broker closes joystick's connection (rabbitmqctl close_connection, as an operator or a broker
 * restart does) while a job runs and again while announcements are being sent; compose messages are
 * published while joystick is disconnected (its reconnections refused by the TCP proxy in between, so
 * the outage lasts). joystick reconnects by itself, consumes what waited in its queue, and ends where an
 * undisturbed run ends: no message lost, none processed twice.
 */

const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'];
const FILE = 'test/joystick/reliability-broker.test.ts';
let world: World;
type Compose = SampleCompose & { url: string };
let composes: Compose[];
let baseline: Outcome;
const scenarios: Scenario[] = [];
const PER_COMPOSE = 15;

async function scenario(): Promise<Scenario> {
  await world.emulator.reset();
  const s = await openScenario(world, { regions: REGIONS, arches: ['x86_64'] });
  scenarios.push(s);
  return s;
}

const finished = (c: SampleCompose & { url: string }) => pungiBody(c.composeId, c.url, 'FINISHED');

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  composes = [];
  for (const [i, date] of ['20190611', '20190725', '20190902'].entries())
    composes.push(
      await world.compose({ rawSize: 16 * 2 ** 20, version: `${30 + i}`, date, arches: ['x86_64'] }),
    );
  const s = await scenario();
  await s.start();
  const pub = await openPungiPublisher(s.prefix);
  for (const c of composes) await pub.publish(finished(c));
  await pub.close();
  await settle(s.ledger, PER_COMPOSE * composes.length);
  await s.joystick.stop();
  baseline = await outcomeOf(world, REGIONS, s.ledger);
});

afterAll(async () => {
  for (const s of scenarios) await s.close();
  await world?.close();
});

describe('the broker connection lost mid-job', () => {
  it('reconnects and consumes what was published meanwhile; nothing lost, nothing processed twice', async () => {
    const t0 = Date.now();
    expect(baseline.messages).toHaveLength(PER_COMPOSE * composes.length);
    const s = await scenario();
    const js = await s.start();
    const pub = await openPungiPublisher(s.prefix);
    const [a, b, c] = composes as [Compose, Compose, Compose];

    // 1. Compose A is replicating (its copies held 2 s each) when the broker drops joystick; reconnecting
    //    is refused for 4 s, and B (twice, as a flaky bridge sends it) and C are published meanwhile.
    const rule = world.emulator.addFault({ operation: 'CopyImage', kind: 'latency', latencyMs: 2000 });
    await pub.publish(finished(a));
    const deadline = Date.now() + 60_000;
    while (!world.emulator.faultStats().some((f) => f.id === rule && f.fired > 0)) {
      if (Date.now() > deadline) throw new Error(`joystick never replicated: ${js.tail()}`);
      await sleep(20);
    }
    s.amqp.refuse(true);
    expect(await closeConnections(s.connectionName)).toBe(1);
    await js.waitLog(/lost the AMQP connection; reconnecting/);
    await pub.publish(finished(b));
    await pub.publish(finished(b));
    await pub.publish(finished(c));
    await sleep(4000);
    expect(js.count(/reconnection failed/)).toBeGreaterThan(0);
    // Nothing was consumed while disconnected: all three wait in the queue, not acked.
    expect(await queueReady(s.queue)).toBe(3);
    world.emulator.clearFaults();
    s.amqp.refuse(false);

    // 2. The connection dies again while an announcement awaits its confirm: the proxy stalls the broker's
    //    replies, so the message reaches the broker (and the ledger) but its confirm is lost with the
    //    connection; the publisher sends it again on the next connection, under the same message id.
    await s.ledger.waitFor(
      (l) => l.messages((d) => d.body.compose === b.composeId).length > 0,
      60_000,
      `the first announcement of ${b.composeId}`,
    );
    s.amqp.hold('downstream');
    // A message the broker routed but joystick has not logged as published (still so a moment later, when
    // any confirm that slipped through before the stall would have been logged) awaits its confirm.
    const awaiting = () => {
      const logged = new Set(js.lines(/^message published$/).map((l) => String(l.id)));
      return s.ledger.deliveries.find((d) => !logged.has(d.messageId))?.messageId;
    };
    for (;;) {
      await s.ledger.waitFor(() => awaiting() !== undefined, 60_000, 'an announcement awaiting its confirm');
      const id = awaiting();
      await sleep(300);
      if (awaiting() === id) break;
    }
    // The network drops the connection there (a TCP reset from the proxy: rabbitmqctl's close would wait
    // for a handshake through the stalled direction).
    s.amqp.cut();
    s.amqp.release();

    await settle(s.ledger, baseline.messages.length);
    await pub.close();
    expect(js.running).toBe(true);
    const stopped = await js.stop();
    expect(stopped.code).toBe(0);
    const got = await outcomeOf(world, REGIONS, s.ledger);

    expect(js.count(/lost the AMQP connection; reconnecting/)).toBe(2);
    expect(js.count(/^connected to the AMQP broker$/)).toBe(3);
    // Nothing lost: every announcement of the undisturbed run; the broker holds nothing for joystick.
    expect(missingFrom(baseline.messages, got.messages)).toEqual([]);
    expect(got.messages).toEqual(baseline.messages);
    expect(s.ledger.duplicates()).toEqual([]);
    expect(await queueHeld(s.queue)).toEqual({ ready: 0, unacked: 0 });
    // Nothing processed twice: each compose recorded once, each job run once, each image made once.
    // Composes are read concurrently (max_parallel_composes), so their jobs are compared by compose id.
    const jobs = await s.store((st) => st.jobs());
    expect(jobs.map((j) => [j.composeId, j.state, j.attempts]).sort()).toEqual(
      composes.map((x) => [x.composeId, 'complete', 1]).sort(),
    );
    expect(js.count(/duplicate message ignored/)).toBeGreaterThanOrEqual(1);
    const calls = world.emulator.calls();
    expect(calls.filter((x) => x.operation === 'StartSnapshot')).toHaveLength(composes.length);
    expect(calls.filter((x) => x.operation === 'RegisterImage')).toHaveLength(composes.length * 2);
    expect(got.inventory).toEqual(baseline.inventory);
    expect(got.raw.orphans).toEqual([]);

    // The message whose confirm was lost arrived twice, under one id; nothing else did.
    const resent = [...s.ledger.extraCopies().values()].reduce((x, y) => x + y, 0);
    expect(resent).toBe(1);
    recordScenario({
      test: `${FILE} > the broker connection lost mid-job`,
      fault:
        'broker connection lost: closed by the broker mid-job (4 s outage), reset with a confirm in flight',
      injected: 2,
      outcome: `reconnected; the 3 compose messages (1 a duplicate) published during the outage waited in the queue, then were consumed; ${composes.length} jobs run once`,
      lost: missingFrom(baseline.messages, got.messages).length,
      duplicates: s.ledger.duplicates().length,
      resent,
      durationMs: Date.now() - t0,
    });
  });
});
