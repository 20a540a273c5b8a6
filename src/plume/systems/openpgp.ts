import { execFile } from 'node:child_process';
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlumeError } from '../../shared/errors.js';

/**
 * Detached OpenPGP signatures, checked with the `gpg` binary. Each check runs in a fresh, private
 * GNUPGHOME holding only the configured key(s), so a good signature can only come from them: nothing of the
 * operator's own keyring (or its trust settings) takes part. Arguments are arrays: nothing reaches a shell.
 */

export interface SignatureCheck {
  /** The file that was signed (the compressed image as downloaded). */
  file: string;
  /** The detached signature, binary or ASCII-armoured. */
  signature: Buffer;
  /** Public key file(s), binary or ASCII-armoured. */
  keyFile: string;
  /** What to call the file in errors. */
  what: string;
  signal?: AbortSignal;
}

export interface GoodSignature {
  /** Fingerprint of the key that made the signature. */
  fingerprint: string;
  /** Fingerprint of its primary key. */
  primaryFingerprint: string;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function gpg(args: string[], signal?: AbortSignal): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      'gpg',
      args,
      {
        // Messages in English whatever the locale; status lines are machine-readable anyway.
        env: { ...process.env, LC_ALL: 'C', LANGUAGE: 'C' },
        maxBuffer: 4 * 1024 * 1024,
        timeout: 30 * 60_000,
        signal,
      },
      (err: (Error & { code?: unknown }) | null, stdout, stderr) => {
        if (err && err.code === 'ENOENT')
          return reject(
            new PlumeError(
              'internal',
              'cannot run gpg: not installed',
              'install GnuPG (Debian/Ubuntu package gnupg, RPM gnupg2)',
            ),
          );
        // Killed by a signal or aborted: no exit status to judge.
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
  });
}

/** `[GNUPG:] KEYWORD args...` lines, by keyword. */
export function statusLines(stdout: string): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  for (const line of stdout.split('\n')) {
    const m = /^\[GNUPG:\] (\S+)(?: (.*))?$/.exec(line.trim());
    if (!m) continue;
    const list = out.get(m[1]!) ?? [];
    list.push((m[2] ?? '').split(' '));
    out.set(m[1]!, list);
  }
  return out;
}

/**
 * What a `gpg --verify` run means. Pure, so every outcome is tested without keys: only a GOODSIG with a
 * VALIDSIG passes; an expired or revoked key, a bad signature or one by another key are refused.
 */
export function judgeVerification(
  run: Run,
  c: Pick<SignatureCheck, 'keyFile' | 'what'>,
): GoodSignature | PlumeError {
  const status = statusLines(run.stdout);
  const hint = 'nothing was uploaded; check the image and its signature, or the configured key';
  if (status.has('BADSIG'))
    return new PlumeError(
      'input',
      `the OpenPGP signature of ${c.what} does not match it (BADSIG)`,
      'the image is corrupt or was tampered with; nothing was uploaded',
    );
  const missing = status.get('NO_PUBKEY')?.[0]?.[0] ?? status.get('ERRSIG')?.[0]?.[0];
  if (missing && !status.has('GOODSIG'))
    return new PlumeError(
      'input',
      `${c.what} is signed by key ${missing}, which is not in ${c.keyFile}`,
      hint,
    );
  for (const [kw, what] of [
    ['EXPKEYSIG', 'an expired key'],
    ['REVKEYSIG', 'a revoked key'],
    ['EXPSIG', 'an expired signature'],
  ] as const)
    if (status.has(kw)) return new PlumeError('input', `${c.what} is signed with ${what} (${kw})`, hint);
  const valid = status.get('VALIDSIG')?.[0];
  if (run.code === 0 && status.has('GOODSIG') && valid?.[0])
    return { fingerprint: valid[0], primaryFingerprint: valid[9] ?? valid[0] };
  if (status.has('NODATA'))
    return new PlumeError('input', `the signature of ${c.what} is not an OpenPGP signature (NODATA)`, hint);
  const said = run.stderr.trim().split('\n').pop() ?? '';
  return new PlumeError(
    'input',
    `the OpenPGP signature of ${c.what} did not verify (gpg exit status ${run.code}${said ? `: ${said.replace(/^gpg: /, '')}` : ''})`,
    hint,
  );
}

/** Check a detached signature against the configured key(s); resolves only for a good signature. */
export async function verifyDetachedSignature(c: SignatureCheck): Promise<GoodSignature> {
  await access(c.keyFile, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
    throw new PlumeError(
      'usage',
      `cannot read the OpenPGP key ${c.keyFile}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
      'configure verify_key (or pass --verify-key) with the public key the images are signed with',
    );
  });
  const home = await mkdtemp(join(tmpdir(), 'plume-gpg-'));
  try {
    const base = ['--homedir', home, '--batch', '--no-tty', '--no-auto-key-retrieve', '--no-autostart'];
    const imported = await gpg([...base, '--quiet', '--import', c.keyFile], c.signal);
    if (imported.code !== 0)
      throw new PlumeError(
        'usage',
        `${c.keyFile} is not an OpenPGP public key (${imported.stderr.trim().split('\n').pop() ?? `exit ${imported.code}`})`,
        'configure verify_key (or pass --verify-key) with an exported public key',
      );
    const sig = join(home, 'image.sig');
    await writeFile(sig, c.signature, { mode: 0o600 });
    const run = await gpg(
      [...base, '--trust-model', 'always', '--status-fd', '1', '--verify', sig, c.file],
      c.signal,
    );
    const verdict = judgeVerification(run, c);
    if (verdict instanceof PlumeError) throw verdict;
    return verdict;
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** The binary packets of an OpenPGP message, binary or ASCII-armoured (its checksum line is not needed). */
function dearmor(data: Buffer): Buffer {
  const text = data.toString('latin1');
  if (!text.trimStart().startsWith('-----BEGIN PGP')) return data;
  const lines = text.split(/\r?\n/);
  const begin = lines.findIndex((l) => l.startsWith('-----BEGIN PGP'));
  const end = lines.findIndex((l, i) => i > begin && l.startsWith('-----END PGP'));
  const body = lines.slice(begin + 1, end < 0 ? undefined : end);
  // Armour headers (`Version: ...`) end at the first empty line, when there are any.
  const blank = body.findIndex((l) => l.trim() === '');
  const data64 = (
    blank >= 0 && body.slice(0, blank).every((l) => l.includes(': ')) ? body.slice(blank + 1) : body
  )
    .filter((l) => !l.startsWith('='))
    .join('');
  return Buffer.from(data64, 'base64');
}

/**
 * When a detached signature was made, as its signer recorded it (RFC 9580: a v3 signature's creation time,
 * or the Signature Creation Time subpacket of a v4 or v6 signature's hashed area, which the signature covers).
 * Pure: read from the signature's bytes, no key and no gpg needed. It names what a build made once (Container
 * Linux's GCE image carries the day its build was signed), so it is the same on every run and every mirror.
 */
export function signatureCreationTime(signature: Buffer, what: string): Date {
  const bad = (why: string) =>
    new PlumeError(
      'input',
      `the signature of ${what} is not an OpenPGP signature plume can read: ${why}`,
      'check that the .sig file beside the image is its detached OpenPGP signature',
    );
  const buf = dearmor(signature);
  if (buf.length < 2 || !(buf[0]! & 0x80)) throw bad('no OpenPGP packet');
  const h = buf[0]!;
  let tag: number;
  let at: number;
  if (h & 0x40) {
    // New packet format: the length's first octet says how long it is.
    tag = h & 0x3f;
    const l0 = buf[1]!;
    at = l0 < 192 ? 2 : l0 < 224 ? 3 : l0 === 255 ? 6 : -1;
    if (at < 0) throw bad('a partial-length signature packet');
  } else {
    tag = (h >> 2) & 0x0f;
    at = [2, 3, 5, -1][h & 3]!;
    if (at < 0) throw bad('a signature packet of indeterminate length');
  }
  if (tag !== 2) throw bad(`its first packet is of type ${tag}, not a signature (2)`);
  const version = buf[at];
  if (version === 3 || version === 2) {
    if (buf[at + 1] !== 5) throw bad('a v3 signature without its 5 hashed octets');
    return new Date(buf.readUInt32BE(at + 3) * 1000);
  }
  if (version !== 4 && version !== 5 && version !== 6) throw bad(`signature version ${version}`);
  // version, type, public-key and hash algorithms; then the hashed area's length (4 octets from v5 on).
  const wide = version !== 4;
  const lenAt = at + 4;
  if (buf.length < lenAt + (wide ? 4 : 2)) throw bad('it is cut short');
  const hashedLen = wide ? buf.readUInt32BE(lenAt) : buf.readUInt16BE(lenAt);
  let p = lenAt + (wide ? 4 : 2);
  const end = p + hashedLen;
  if (end > buf.length) throw bad('it is cut short');
  while (p < end) {
    const o = buf[p]!;
    let len: number;
    if (o < 192) {
      len = o;
      p += 1;
    } else if (o < 255) {
      len = ((o - 192) << 8) + buf[p + 1]! + 192;
      p += 2;
    } else {
      len = buf.readUInt32BE(p + 1);
      p += 5;
    }
    if (len < 1 || p + len > end) throw bad('a malformed subpacket');
    const type = buf[p]! & 0x7f;
    if (type === 2 && len === 5) return new Date(buf.readUInt32BE(p + 1) * 1000);
    p += len;
  }
  throw bad('it records no creation time');
}
