import { PlumeError } from '../../../shared/errors.js';

/**
 * The regions of each AWS partition, for when the account cannot be asked (DescribeRegions denied) and for
 * `joystick run --check`, which connects to nothing. With credentials, preflight asks DescribeRegions
 * (every region, enabled or not) instead, so a region AWS opens after this list was written is accepted
 * there; update the list with the release that follows.
 */
export const KNOWN_REGIONS: Record<'aws' | 'aws-us-gov' | 'aws-cn', readonly string[]> = {
  aws: [
    'af-south-1',
    'ap-east-1',
    'ap-east-2',
    'ap-northeast-1',
    'ap-northeast-2',
    'ap-northeast-3',
    'ap-south-1',
    'ap-south-2',
    'ap-southeast-1',
    'ap-southeast-2',
    'ap-southeast-3',
    'ap-southeast-4',
    'ap-southeast-5',
    'ap-southeast-6',
    'ap-southeast-7',
    'ca-central-1',
    'ca-west-1',
    'eu-central-1',
    'eu-central-2',
    'eu-north-1',
    'eu-south-1',
    'eu-south-2',
    'eu-west-1',
    'eu-west-2',
    'eu-west-3',
    'il-central-1',
    'me-central-1',
    'me-south-1',
    'mx-central-1',
    'sa-east-1',
    'us-east-1',
    'us-east-2',
    'us-west-1',
    'us-west-2',
  ],
  'aws-us-gov': ['us-gov-east-1', 'us-gov-west-1'],
  'aws-cn': ['cn-north-1', 'cn-northwest-1'],
};

/**
 * Refuse regions a partition does not have, with one line naming them, before anything is done. Pure.
 * `source` says what the list of known regions came from (DescribeRegions, or the list above).
 */
export function checkRegions(
  target: string,
  requested: readonly string[],
  known: readonly string[],
  source: string,
): void {
  const unknown = [...new Set(requested)].filter((r) => !known.includes(r));
  if (unknown.length === 0) return;
  throw new PlumeError(
    'usage',
    `unknown AWS region${unknown.length > 1 ? 's' : ''} for target ${target}: ${unknown.join(', ')} (not among the ${known.length} regions ${source})`,
    'fix the regions (or base_region) in the config or --regions',
  );
}
