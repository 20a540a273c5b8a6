import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressFile, writeRawImage } from '../../../tools/compose/sample-compose.js';

/** A throwaway OpenPGP key in its own GNUPGHOME, as a build machine's signing key. */
export interface SigningKey {
  home: string;
  /** ASCII-armoured public key, what plume is configured with. */
  keyFile: string;
  fingerprint: string;
  /** Write a detached signature of `file` to `out`. */
  sign(file: string, out: string): void;
  close(): void;
}

export function makeSigningKey(name: string): SigningKey {
  // Short path: gpg-agent's socket lives in the home and socket paths are limited in length.
  const home = mkdtempSync(join(tmpdir(), 'pgk-'));
  chmodSync(home, 0o700);
  const gpg = (args: string[]) =>
    execFileSync(
      'gpg',
      ['--homedir', home, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LC_ALL: 'C' },
      },
    );
  gpg([
    '--quick-generate-key',
    `${name} <${name.toLowerCase().replace(/\W+/g, '.')}@example.org>`,
    'ed25519',
    'sign',
    'never',
  ]);
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(gpg(['--with-colons', '--list-keys']).toString())![1]!;
  const keyFile = join(home, 'public.asc');
  writeFileSync(keyFile, gpg(['--armor', '--export', fingerprint]));
  return {
    home,
    keyFile,
    fingerprint,
    sign: (file, out) =>
      void gpg(['--yes', '--local-user', fingerprint, '--output', out, '--detach-sign', file]),
    close() {
      // Stops the gpg-agent this home started, and only that one.
      try {
        execFileSync('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore' });
      } catch {
        /* no agent was started */
      }
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * A Container Linux build directory as the build buckets hold it: `{base}/{board}/{version}/` with the
 * bzip2-compressed raw image and its detached signature. Returns the image path.
 */
export async function writeContainerLinuxBuild(
  base: string,
  board: string,
  version: string,
  key: SigningKey,
  opts: { rawSize?: number; dataFraction?: number; seed?: number } = {},
): Promise<string> {
  const dir = join(base, board, version);
  mkdirSync(dir, { recursive: true });
  const raw = join(dir, 'coreos_production_ami_image.bin');
  await writeRawImage(raw, {
    size: opts.rawSize ?? 24 * 2 ** 20,
    dataFraction: opts.dataFraction ?? 0.2,
    seed: opts.seed ?? 3,
  });
  const image = await compressFile(raw, 'bzip2');
  rmSync(raw);
  key.sign(image, `${image}.sig`);
  writeFileSync(
    join(dir, 'version.txt'),
    `COREOS_BUILD=${version.split('.')[0]}\nCOREOS_VERSION=${version}\n`,
  );
  return image;
}

/** An AWS shared credentials file with the profiles Container Linux's partitions use. */
export function writeCredentials(path: string, profiles: string[], mode = 0o600): string {
  writeFileSync(
    path,
    profiles
      .map(
        (p) =>
          `[${p}]\naws_access_key_id = AKIAEMULATOR0000TEST\naws_secret_access_key = emulator-secret-${p}\n`,
      )
      .join('\n'),
    { mode },
  );
  chmodSync(path, mode);
  return path;
}
