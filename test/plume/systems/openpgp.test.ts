import { describe, expect, it } from 'vitest';
import { judgeVerification } from '../../../src/plume/systems/openpgp.js';
import { PlumeError } from '../../../src/shared/errors.js';

const FPR = 'D0A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3';
const c = { keyFile: '/etc/plume/buildbot.asc', what: 'image.bin.bz2' };
const judge = (code: number, ...lines: string[]) =>
  judgeVerification({ code, stdout: lines.map((l) => `[GNUPG:] ${l}`).join('\n'), stderr: '' }, c);
const line = (v: unknown) => (v instanceof PlumeError ? v.oneLine() : v);

describe('judging a gpg --verify run', () => {
  it('passes a good signature by the configured key', () => {
    expect(
      judge(
        0,
        'NEWSIG',
        `GOODSIG 5C6D7E8F90A1B2C3 Buildbot`,
        `VALIDSIG ${FPR} 2024-05-01 1714521600 0 4 0 22 10 00 ${FPR}`,
      ),
    ).toEqual({ fingerprint: FPR, primaryFingerprint: FPR });
  });
  it.each([
    [
      [1, 'BADSIG 5C6D7E8F90A1B2C3 Buildbot'],
      'the OpenPGP signature of image.bin.bz2 does not match it (BADSIG)',
    ],
    [
      [2, 'ERRSIG 1122334455667788 22 8 00 1714521600 9 -', 'NO_PUBKEY 1122334455667788'],
      'image.bin.bz2 is signed by key 1122334455667788, which is not in /etc/plume/buildbot.asc',
    ],
    [
      [0, 'EXPKEYSIG 5C6D7E8F90A1B2C3 Buildbot', `VALIDSIG ${FPR} x`],
      'image.bin.bz2 is signed with an expired key (EXPKEYSIG)',
    ],
    [
      [0, 'REVKEYSIG 5C6D7E8F90A1B2C3 Buildbot', `VALIDSIG ${FPR} x`],
      'image.bin.bz2 is signed with a revoked key (REVKEYSIG)',
    ],
    [[2, 'NODATA 4'], 'the signature of image.bin.bz2 is not an OpenPGP signature (NODATA)'],
    [
      [0, 'GOODSIG 5C6D7E8F90A1B2C3 Buildbot'],
      'the OpenPGP signature of image.bin.bz2 did not verify (gpg exit status 0)',
    ],
  ] as const)('refuses %j', ([code, ...lines], message) => {
    const verdict = judge(code, ...lines);
    expect(verdict).toBeInstanceOf(PlumeError);
    expect(line(verdict)).toContain(message);
    expect(line(verdict)).toContain('nothing was uploaded');
  });
});
