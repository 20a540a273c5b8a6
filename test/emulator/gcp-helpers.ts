import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ImagesClient, GlobalOperationsClient, ProjectsClient } from '@google-cloud/compute';
import { Storage } from '@google-cloud/storage';
import { JWT } from 'google-auth-library';
import type { GcpEmulator } from '../../tools/emulator/gcp/index.js';

const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/**
 * google-auth-library's own service-account client for a JSON key file, getting its tokens from the key's
 * `token_uri` (the emulator's endpoint). The library always posts to Google's token URL, so the request is
 * redirected on the client's transporter, a documented extension point; the JWT it signs is unchanged.
 */
export function keyFileAuth(path: string): JWT {
  const key = JSON.parse(readFileSync(path, 'utf8')) as {
    client_email: string;
    private_key: string;
    private_key_id: string;
    token_uri: string;
  };
  const jwt = new JWT({
    email: key.client_email,
    key: key.private_key,
    keyId: key.private_key_id,
    scopes: ['https://www.googleapis.com/auth/cloud-platform'],
  });
  jwt.transporter.interceptors.request.add({
    resolved: (options) => {
      if (String(options.url) === GOOGLE_TOKEN_URL) options.url = new URL(key.token_uri);
      return Promise.resolve(options);
    },
  });
  return jwt;
}

/** Compute Engine clients of @google-cloud/compute (REST transport) against the emulator. */
export function computeClients(emu: GcpEmulator) {
  const options = { ...emu.endpoints.computeClient, authClient: keyFileAuth(emu.keyFilePath) };
  return {
    images: new ImagesClient(options),
    operations: new GlobalOperationsClient(options),
    projects: new ProjectsClient(options),
  };
}

/** @google-cloud/storage against the emulator's storage endpoint, with the key file's credentials. */
export function storageClient(emu: GcpEmulator, maxRetries = 3): Storage {
  return new Storage({
    projectId: emu.project,
    apiEndpoint: emu.endpoints.storage,
    useAuthWithCustomEndpoint: true,
    authClient: keyFileAuth(emu.keyFilePath),
    retryOptions: {
      autoRetry: maxRetries > 0,
      maxRetries,
      retryDelayMultiplier: 1,
      totalTimeout: 60,
      maxRetryDelay: 2,
    },
  });
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('expected the call to fail, it succeeded');
}

/**
 * An image archive as image builders make one (`tar --format=oldgnu -Sczf`): a sparse raw disk of `rawBytes`
 * with 64 KiB of data at its start, stored as `member` (GCE wants disk.raw).
 */
export async function gceArchive(dir: string, rawBytes: number, member = 'disk.raw'): Promise<Buffer> {
  const raw = join(dir, `raw-${randomUUID()}`);
  const out = join(dir, `${randomUUID()}.tar.gz`);
  const fd = openSync(raw, 'w');
  writeSync(fd, randomBytes(64 * 1024), 0, 64 * 1024, 0);
  ftruncateSync(fd, rawBytes);
  closeSync(fd);
  execFileSync('tar', [
    '--format=oldgnu',
    '-Sczf',
    out,
    '-C',
    dir,
    '--transform',
    `s,.*,${member},`,
    basename(raw),
  ]);
  return readFileSync(out);
}

/** Store `data` as an object with one simple upload. */
export async function putObject(storage: Storage, bucket: string, name: string, data: Buffer): Promise<void> {
  await storage.bucket(bucket).file(name).save(data, { resumable: false, contentType: 'application/gzip' });
}

/** Poll until the image leaves PENDING (the fake reads its archive in the background). */
export async function settled(images: ImagesClient, project: string, image: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [found] = await images.get({ project, image });
    if (found.status !== 'PENDING' || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
}
