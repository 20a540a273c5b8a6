/**
 * AWS's names for architectures. Everything outside the AWS provider speaks the distributions' names
 * (x86_64 and aarch64, or amd64 as some spell it): messages, records, the websites' files. Only an AWS
 * image, and what describes one as AWS does, says `arm64`.
 */

export type AwsArchitecture = 'x86_64' | 'arm64';

const AWS_NAMES: Record<string, AwsArchitecture> = {
  x86_64: 'x86_64',
  amd64: 'x86_64',
  aarch64: 'arm64',
  arm64: 'arm64',
};

/** The architecture names AWS can run, as systems may spell them. */
export const AWS_RUNNABLE_ARCHES: readonly string[] = Object.keys(AWS_NAMES);

/** AWS's name for an architecture; undefined for one AWS does not run (ppc64le, s390x...). */
export function awsArchitecture(arch: string): AwsArchitecture | undefined {
  return Object.hasOwn(AWS_NAMES, arch) ? AWS_NAMES[arch] : undefined;
}

/** x86_64 instances still boot BIOS where UEFI is missing; Graviton is UEFI only. */
export function defaultBootMode(architecture: AwsArchitecture): 'uefi' | 'uefi-preferred' {
  return architecture === 'arm64' ? 'uefi' : 'uefi-preferred';
}
