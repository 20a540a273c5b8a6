import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isComposeTopic, isFinished, parsePungiBody } from '../../src/joystick/pungi.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/messages/${name}`, import.meta.url), 'utf8'));

describe('Pungi compose status messages', () => {
  it('reads the full flat body', () => {
    const m = fixture('pungi-status-finished-cloud.json');
    expect(isComposeTopic(m.topic)).toBe(true);
    const p = parsePungiBody(m.body);
    expect(p).toEqual({
      ok: true,
      compose: {
        status: 'FINISHED',
        id: 'Fedora-Cloud-30-20190611.0',
        location: 'https://kojipkgs.fedoraproject.org/compose/cloud/Fedora-Cloud-30-20190611.0/compose',
        date: '20190611',
        type: 'production',
        respin: 0,
        label: 'RC-20190611.0',
        releaseShort: 'Fedora-Cloud',
        releaseVersion: '30',
        releaseType: 'ga',
      },
    });
  });
  it('reads the minimal body and the fedmsg-bridged one', () => {
    const minimal = {
      compose_id: 'Fedora-Rawhide-20240501.n.0',
      location: 'https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20240501.n.0/compose',
      status: 'FINISHED_INCOMPLETE',
    };
    const a = parsePungiBody(minimal);
    expect(a.ok && a.compose).toEqual({
      ...{ id: minimal.compose_id, location: minimal.location, status: minimal.status },
    });
    const b = parsePungiBody({
      i: 1,
      timestamp: 1,
      msg_id: 'x',
      topic: 'org.fedoraproject.prod.pungi.compose.status.change',
      msg: { ...minimal, compose_respin: '2' },
    });
    expect(b.ok && b.compose.respin).toBe(2);
    expect(b.ok && b.compose.id).toBe('Fedora-Rawhide-20240501.n.0');
  });
  it('says why a body is not a compose message', () => {
    expect(parsePungiBody({ status: 'FINISHED', location: 'x' })).toEqual({
      ok: false,
      reason:
        'not a Pungi compose status message: compose_id: Invalid input: expected string, received undefined',
    });
    expect(parsePungiBody('nope').ok).toBe(false);
    expect(parsePungiBody({ compose_id: 3, location: 'x', status: 'FINISHED' }).ok).toBe(false);
  });
  it('acts on FINISHED and FINISHED_INCOMPLETE only', () => {
    expect(['STARTED', 'FINISHED', 'FINISHED_INCOMPLETE', 'DOOMED', 'TERMINATED'].filter(isFinished)).toEqual(
      ['FINISHED', 'FINISHED_INCOMPLETE'],
    );
    expect(isComposeTopic('org.fedoraproject.stg.pungi.compose.status.change')).toBe(true);
    expect(isComposeTopic('org.fedoraproject.prod.pungi.compose.status.changed')).toBe(false);
  });
});
