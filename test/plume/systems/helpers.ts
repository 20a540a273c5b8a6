import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compressFile,
  writeFixedVhd,
  writeGceArchive,
  writeRawImage,
} from '../../../tools/compose/sample-compose.js';

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
 * bzip2-compressed raw image and its detached signature, and with `gce` the GCE archive (a tar.gz holding
 * disk.raw), with `azure` the fixed VHD (bzip2), each signed too, all of the same disk. Returns the paths.
 */
export async function writeContainerLinuxBuild(
  base: string,
  board: string,
  version: string,
  key: SigningKey,
  opts: { rawSize?: number; dataFraction?: number; seed?: number; gce?: boolean; azure?: boolean } = {},
): Promise<string> {
  return (await writeContainerLinuxFiles(base, board, version, key, opts)).ami;
}

export async function writeContainerLinuxFiles(
  base: string,
  board: string,
  version: string,
  key: SigningKey,
  opts: { rawSize?: number; dataFraction?: number; seed?: number; gce?: boolean; azure?: boolean } = {},
): Promise<{ ami: string; gce?: string; azure?: string }> {
  const dir = join(base, board, version);
  mkdirSync(dir, { recursive: true });
  const rawSize = opts.rawSize ?? 24 * 2 ** 20;
  const raw = join(dir, 'coreos_production_ami_image.bin');
  await writeRawImage(raw, {
    size: rawSize,
    dataFraction: opts.dataFraction ?? 0.2,
    seed: opts.seed ?? 3,
  });
  const out: { ami: string; gce?: string; azure?: string } = { ami: '' };
  if (opts.gce) {
    out.gce = join(dir, 'coreos_production_gce.tar.gz');
    await writeGceArchive(raw, out.gce);
    key.sign(out.gce, `${out.gce}.sig`);
  }
  if (opts.azure) {
    const vhd = join(dir, 'coreos_production_azure_image.vhd');
    await writeFixedVhd(raw, vhd, rawSize);
    out.azure = await compressFile(vhd, 'bzip2');
    rmSync(vhd, { force: true });
    key.sign(out.azure, `${out.azure}.sig`);
  }
  out.ami = await compressFile(raw, 'bzip2');
  rmSync(raw, { force: true });
  key.sign(out.ami, `${out.ami}.sig`);
  writeFileSync(
    join(dir, 'version.txt'),
    `COREOS_BUILD=${version.split('.')[0]}\nCOREOS_VERSION=${version}\n`,
  );
  return out;
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
