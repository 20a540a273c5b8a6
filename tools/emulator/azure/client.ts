import { ControlClient } from '../client.js';
import type { ReplicationMode } from './replication.js';

/** Drives an Azure emulator in another process through its control API (its `controlEndpoint`). */
export class AzureEmulatorClient extends ControlClient {
  async setReplication(region: string, mode: ReplicationMode): Promise<void> {
    await this.call('POST', 'replication', { region, mode });
  }
}
