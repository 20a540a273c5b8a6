import { ClientSecretCredential } from '@azure/identity';
import type { AzureEndpoints } from './types.js';

/**
 * How a client reaches the emulator, from its endpoints (in-process or printed by main.ts): a real
 * ClientSecretCredential whose authority is the emulator, and client options that trust its certificate
 * for these connections only (no global TLS setting changes).
 */
export function emulatorCredential(e: AzureEndpoints): ClientSecretCredential {
  return new ClientSecretCredential(e.arm.tenantId, e.arm.clientId, e.arm.clientSecret, {
    authorityHost: e.arm.authorityHost,
    // MSAL would otherwise ask Microsoft's public instance discovery about this authority.
    disableInstanceDiscovery: true,
    tlsOptions: { ca: e.arm.ca },
  });
}

/** Options for ComputeManagementClient (and any ARM client) against the emulator. */
export function armClientOptions(e: AzureEndpoints): { endpoint: string; tlsOptions: { ca: string } } {
  return { endpoint: e.arm.endpoint, tlsOptions: { ca: e.arm.ca } };
}
