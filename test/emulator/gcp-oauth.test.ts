import { createSign, generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { ImagesClient } from '@google-cloud/compute';
import { JWT } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGcpEmulator, type GcpEmulator } from '../../tools/emulator/gcp/index.js';
import { keyFileAuth, rejection } from './gcp-helpers.js';

/**
 * The token endpoint the key file names: the JWT-bearer grant of a service account, as google-auth-library
 * asks for it, with the assertion's signature checked against the account's public key.
 */

let emu: GcpEmulator;
let key: {
  client_email: string;
  private_key: string;
  private_key_id: string;
  token_uri: string;
  type: string;
};

beforeAll(async () => {
  emu = await startGcpEmulator();
  key = JSON.parse(readFileSync(emu.keyFilePath, 'utf8'));
});
afterAll(async () => {
  await emu?.stop();
});

/** A JWT client for `email` signing with `privateKey`, sending to the emulator's token endpoint. */
function jwtClient(email: string, privateKey: string): JWT {
  const jwt = new JWT({ email, key: privateKey, scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  jwt.transporter.interceptors.request.add({
    resolved: (options) => {
      if (String(options.url) === 'https://oauth2.googleapis.com/token') options.url = new URL(key.token_uri);
      return Promise.resolve(options);
    },
  });
  return jwt;
}

function assertion(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${part({ alg: 'RS256', typ: 'JWT', kid: key.private_key_id })}.${part(claims)}`;
  return `${body}.${createSign('RSA-SHA256').update(body).sign(key.private_key, 'base64url')}`;
}

async function grant(jwt: string) {
  const res = await fetch(key.token_uri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: jwt }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('the service account key and its token endpoint', () => {
  it('is a service account JSON key, readable by its owner only, naming the emulator as token_uri', () => {
    expect(statSync(emu.keyFilePath).mode & 0o777).toBe(0o600);
    expect(key).toMatchObject({
      type: 'service_account',
      client_email: `plume-publisher@${emu.project}.iam.gserviceaccount.com`,
      token_uri: `${emu.endpoints.compute}/token`,
    });
    expect(key.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it("grants google-auth-library's JWT client a token that Compute Engine's client then uses", async () => {
    emu.clearCalls();
    const images = new ImagesClient({
      ...emu.endpoints.computeClient,
      authClient: keyFileAuth(emu.keyFilePath),
    });
    try {
      const [list] = await images.list({ project: emu.project });
      expect(list).toEqual([]);
    } finally {
      await images.close();
    }
    expect(emu.calls().map((c) => [c.service, c.operation, c.status])).toEqual([
      ['oauth2', 'token', 200],
      ['compute', 'images.list', 200],
    ]);
  });

  it('refuses an assertion signed by another key, or for another account', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    const forged = await rejection(jwtClient(key.client_email, other).getAccessToken());
    expect(forged.message).toBe('invalid_grant: Invalid JWT Signature.');
    const stranger = await rejection(
      jwtClient(`someone@${emu.project}.iam.gserviceaccount.com`, key.private_key).getAccessToken(),
    );
    expect(stranger.message).toMatch(/^invalid_grant: /);
  });

  it('refuses an expired or long-lived assertion, another audience, and one without a scope', async () => {
    const now = Math.floor(Date.now() / 1000);
    const base = {
      iss: key.client_email,
      scope: 'https://www.googleapis.com/auth/cloud-platform',
      aud: 'https://oauth2.googleapis.com/token',
    };
    expect((await grant(assertion({ ...base, iat: now, exp: now + 3600 }))).status).toBe(200);
    for (const claims of [
      { ...base, iat: now - 7200, exp: now - 3600 },
      { ...base, iat: now, exp: now + 7200 },
      { ...base, aud: 'https://example.org/token', iat: now, exp: now + 3600 },
      { ...base, scope: undefined, iat: now, exp: now + 3600 },
    ]) {
      const res = await grant(assertion(claims));
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(/^invalid_(grant|scope)$/);
    }
  });
});
