import {
  DescribeImageAttributeCommand,
  DescribeSnapshotAttributeCommand,
  type Image,
} from '@aws-sdk/client-ec2';
import type { TargetPlan } from '../../plan.js';
import { awsImage } from './settings.js';
import type { ImageTarget, Problem, PublishedImage, VerifyReport } from '../types.js';
import { send, type AwsClients } from './clients.js';
import { findImagesByName, rootSnapshotId, tagMap, TAG_RELEASE, TAG_VARIANT } from './images.js';

/** Which tags an image of this plan must carry: the plan's, its name, and ours to find it again. */
export function expectedTags(plan: TargetPlan, target: ImageTarget): Record<string, string> {
  return { ...plan.tags, Name: target.name, [TAG_RELEASE]: plan.key, [TAG_VARIANT]: target.variant };
}

/**
 * What is wrong with an image's attributes, against the plan. Pure, so the rules are tested without AWS.
 * The checks are the ones fedimg never made: architecture, boot mode, ENA, the root volume.
 */
export function attributeProblems(
  image: Image,
  plan: TargetPlan,
  target: ImageTarget,
  volumeGiB: number | undefined,
): string[] {
  const s = awsImage(plan);
  const out: string[] = [];
  const check = (what: string, actual: unknown, expected: unknown) => {
    if (actual !== expected)
      out.push(`${what} is ${JSON.stringify(actual ?? null)}, expected ${JSON.stringify(expected)}`);
  };
  check('architecture', image.Architecture, s.architecture);
  check('virtualization type', image.VirtualizationType, 'hvm');
  check('ENA support', image.EnaSupport ?? false, s.enaSupport);
  check('SR-IOV', image.SriovNetSupport, s.sriovNetSupport);
  check('boot mode', image.BootMode, s.bootMode);
  if (s.imdsSupport) check('IMDS support', image.ImdsSupport, s.imdsSupport);
  if (s.tpmSupport) check('TPM support', image.TpmSupport, s.tpmSupport);
  check('root device', image.RootDeviceName, s.rootDeviceName);
  check('root device type', image.RootDeviceType, 'ebs');
  const root = image.BlockDeviceMappings?.find((m) => m.DeviceName === s.rootDeviceName);
  if (!root?.Ebs) out.push(`no EBS mapping for ${s.rootDeviceName}`);
  else {
    check('root volume type', root.Ebs.VolumeType, target.variant);
    if (volumeGiB !== undefined) check('root volume size', root.Ebs.VolumeSize, volumeGiB);
    check('delete on termination', root.Ebs.DeleteOnTermination, true);
  }
  return out;
}

export function tagProblems(image: Image, expected: Record<string, string>): string[] {
  const actual = tagMap(image.Tags);
  return Object.entries(expected)
    .filter(([k, v]) => actual[k] !== v)
    .map(([k, v]) => `tag ${k} is ${JSON.stringify(actual[k] ?? null)}, expected ${JSON.stringify(v)}`);
}

/** What is shared that should be (`missing`), and what is public that should not be (`extra`). */
async function visibilityProblems(
  clients: AwsClients,
  region: string,
  image: Image,
  plan: TargetPlan,
  signal?: AbortSignal,
): Promise<{ missing: string[]; extra: string[] }> {
  const missing: string[] = [];
  const extra: string[] = [];
  const ec2 = clients.ec2(region);
  const want = plan.visibility;
  if (want.public && !image.Public) missing.push('image is not public');
  // A private release (a pre-release, `visibility = "private"`) must not be public by mistake either.
  if (!want.public && image.Public) extra.push('image is public but the release is private');
  if (want.accounts.length > 0) {
    const attr = await send(
      clients,
      'ec2:DescribeImageAttribute',
      region,
      (o) =>
        ec2.send(
          new DescribeImageAttributeCommand({ ImageId: image.ImageId!, Attribute: 'launchPermission' }),
          o,
        ),
      signal,
    );
    const users = new Set((attr.LaunchPermissions ?? []).map((p) => p.UserId));
    for (const a of want.accounts) if (!users.has(a)) missing.push(`image not shared with ${a}`);
  }
  const snapshotId = rootSnapshotId(image);
  if (snapshotId) {
    const attr = await send(
      clients,
      'ec2:DescribeSnapshotAttribute',
      region,
      (o) =>
        ec2.send(
          new DescribeSnapshotAttributeCommand({
            SnapshotId: snapshotId,
            Attribute: 'createVolumePermission',
          }),
          o,
        ),
      signal,
    );
    const perms = attr.CreateVolumePermissions ?? [];
    const isPublic = perms.some((p) => p.Group === 'all');
    if (want.public && !isPublic) missing.push(`snapshot ${snapshotId} is not public`);
    if (!want.public && isPublic) extra.push(`snapshot ${snapshotId} is public but the release is private`);
    const users = new Set(perms.map((p) => p.UserId));
    for (const a of want.accounts)
      if (!users.has(a)) missing.push(`snapshot ${snapshotId} not shared with ${a}`);
  }
  return { missing, extra };
}

/** Check every target in one region: one DescribeImages for all its names, then per-image checks. */
export async function verifyRegion(
  clients: AwsClients,
  plan: TargetPlan,
  region: string,
  volumeGiB: number | undefined,
  signal?: AbortSignal,
): Promise<VerifyReport> {
  const targets = plan.images.filter((t) => t.location === region);
  const found = await findImagesByName(
    clients,
    region,
    targets.map((t) => t.name),
    signal,
  );
  const report: VerifyReport = { ok: [], problems: [] };
  for (const target of targets) {
    const images = found.get(target.name) ?? [];
    const problem = (kind: Problem['kind'], detail: string, id?: string) =>
      report.problems.push({ target, kind, detail, id });
    if (images.length === 0) {
      problem('missing', `no image named ${target.name}`);
      continue;
    }
    if (images.length > 1) {
      problem(
        'duplicate',
        `${images.length} images named ${target.name}: ${images.map((i) => i.ImageId).join(', ')}`,
      );
      continue;
    }
    const image = images[0]!;
    const id = image.ImageId!;
    if (image.State === 'failed' || image.State === 'invalid' || image.State === 'error') {
      problem(
        'failed',
        `image is ${image.State}${image.StateReason?.Message ? `: ${image.StateReason.Message}` : ''}`,
        id,
      );
      continue;
    }
    if (image.State !== 'available') {
      problem('not-available', `image is ${image.State ?? 'in no state'}`, id);
      continue;
    }
    const attrs = attributeProblems(image, plan, target, volumeGiB);
    if (attrs.length > 0) {
      problem('attributes', attrs.join('; '), id);
      continue;
    }
    const tags = tagProblems(image, expectedTags(plan, target));
    if (tags.length > 0) problem('tags', tags.join('; '), id);
    // Not an attribute problem: those are repaired by registering the image again, this by one call.
    const deprecation = plan.deprecateAt && !image.DeprecationTime ? 'no deprecation time' : undefined;
    if (deprecation) problem('deprecation', deprecation, id);
    const vis = await visibilityProblems(clients, region, image, plan, signal);
    if (vis.missing.length > 0) problem('not-public', vis.missing.join('; '), id);
    if (vis.extra.length > 0) problem('public', vis.extra.join('; '), id);
    if (tags.length === 0 && !deprecation && vis.missing.length === 0 && vis.extra.length === 0)
      report.ok.push({ ...target, id });
  }
  return report;
}

export function mergeReports(reports: VerifyReport[]): VerifyReport {
  return { ok: reports.flatMap((r) => r.ok), problems: reports.flatMap((r) => r.problems) };
}

export type { PublishedImage };
