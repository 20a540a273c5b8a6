import { ControlClient } from '../client.js';

/** Drives a Google Cloud emulator in another process through its control API (its `controlEndpoint`). */
export class GcpEmulatorClient extends ControlClient {
  async createBucket(name: string, location?: string): Promise<void> {
    await this.call('POST', 'buckets', location === undefined ? { name } : { name, location });
  }

  /** A valid access token for the emulator's service account. */
  async accessToken(): Promise<string> {
    return (await this.call<{ access_token: string }>('POST', 'token')).access_token;
  }

  async setPendingMs(ms: number): Promise<void> {
    await this.call('POST', 'pending', { ms });
  }
}
