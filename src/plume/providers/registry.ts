import { PlumeError } from '../../shared/errors.js';
import type { PlumeConfig } from '../config.js';
import { awsModule } from './aws/module.js';
import { azureModule } from './azure/module.js';
import { gcpModule } from './gcp/module.js';
import type { ProviderFactory, ProviderHooks, ProviderModule } from './module.js';

/** The providers plume can publish to, in the order a release lists them. A new cloud is one line here. */
export const PROVIDERS: readonly ProviderModule[] = [awsModule, gcpModule, azureModule];

export function providerNames(): string[] {
  return PROVIDERS.map((p) => p.name);
}

export function providerModule(name: string): ProviderModule {
  const found = PROVIDERS.find((p) => p.name === name);
  if (!found)
    throw new PlumeError(
      'usage',
      `unknown platform ${JSON.stringify(name)}`,
      `choose among: ${providerNames().join(', ')}`,
    );
  return found;
}

/** One factory for every provider: a run's targets get their providers from it (shared per account). */
export function providerFactory(config: PlumeConfig, hooks: ProviderHooks = {}): ProviderFactory {
  const factories = new Map<string, ProviderFactory>();
  return (target) => {
    let f = factories.get(target.provider);
    if (!f) factories.set(target.provider, (f = providerModule(target.provider).factory(config, hooks)));
    return f(target);
  };
}
