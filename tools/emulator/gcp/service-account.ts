import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A service account the emulator made: its key pair, and the JSON key file a client is given. */
export interface ServiceAccount {
  email: string;
  keyId: string;
  clientId: string;
  publicKey: KeyObject;
  /** The key file, mode 0600 in a 0700 directory of its own (removed by `remove`). */
  keyFilePath: string;
  /** (Re)write the key file naming this token endpoint. */
  setTokenUri(uri: string): void;
  remove(): void;
}

/**
 * A new RSA key for `name@project.iam.gserviceaccount.com`, written as Google writes a service account's
 * JSON key (type, project_id, private_key_id, private_key in PKCS#8 PEM, client_email, client_id, the URIs),
 * with `token_uri` pointing at the emulator (`setTokenUri`): the one field a client must honour to get tokens here.
 */
export function createServiceAccount(project: string, name: string): ServiceAccount {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = `${name}@${project}.iam.gserviceaccount.com`;
  const keyId = randomBytes(20).toString('hex');
  const clientId = String(BigInt(`0x${randomBytes(8).toString('hex')}`) % 10n ** 21n).padStart(21, '1');
  const dir = mkdtempSync(join(tmpdir(), 'plume-gcp-key-'));
  chmodSync(dir, 0o700);
  const keyFilePath = join(dir, `${project}-${keyId.slice(0, 12)}.json`);
  const key = (tokenUri: string) => ({
    type: 'service_account',
    project_id: project,
    private_key_id: keyId,
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: email,
    client_id: clientId,
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
    auth_provider_x509_cert_url: 'https://www.googleapis.com/oauth2/v1/certs',
    client_x509_cert_url: `https://www.googleapis.com/robot/v1/metadata/x509/${encodeURIComponent(email)}`,
    universe_domain: 'googleapis.com',
  });
  return {
    email,
    keyId,
    clientId,
    publicKey,
    keyFilePath,
    setTokenUri: (uri) =>
      writeFileSync(keyFilePath, `${JSON.stringify(key(uri), null, 2)}\n`, { mode: 0o600 }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
