import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerTls } from '../http-server.js';

/**
 * A throwaway self-signed certificate for 127.0.0.1 and localhost, valid one day, made by the openssl CLI.
 * Clients trust exactly this certificate (as their CA) and nothing is loosened globally. The key exists on
 * disk only for the instant openssl writes it, in a private temporary directory removed at once.
 */
export function selfSignedCertificate(): ServerTls {
  const dir = mkdtempSync(join(tmpdir(), 'plume-azure-tls-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=plume Azure emulator',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
