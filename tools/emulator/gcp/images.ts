import { fail, invalidField, notFound } from './errors.js';
import { IamPolicy } from './iam.js';
import { labelFingerprint, validLabels } from './labels.js';
import { COMPUTE_BASE, resourceId, RFC1035, RFC1035_TEXT, selfLink, timestamp } from './resources.js';

export type ImageResource = Record<string, unknown> & { name: string; status: string };

export interface ImageRecord {
  resource: ImageResource;
  iam: IamPolicy;
}

export const GUEST_OS_FEATURES = new Set([
  'UEFI_COMPATIBLE',
  'VIRTIO_SCSI_MULTIQUEUE',
  'GVNIC',
  'SEV_CAPABLE',
  'SEV_SNP_CAPABLE',
  'SEV_LIVE_MIGRATABLE',
  'SEV_LIVE_MIGRATABLE_V2',
  'TDX_CAPABLE',
  'IDPF',
  'MULTI_IP_SUBNET',
  'SECURE_BOOT',
  'WINDOWS',
  'BARE_METAL_LINUX_COMPATIBLE',
  'SUSPEND_RESUME_COMPATIBLE',
]);
const ARCHITECTURES = new Set(['X86_64', 'ARM64', 'ARCHITECTURE_UNSPECIFIED']);
const STORAGE_LOCATION = /^[a-z]+(?:-[a-z]+\d+)?$/;
const LICENSE_PATH = /^projects\/[^/]+\/global\/licenses\/[^/]+$/;

/** `projects/P/global/licenses/L` or its full URL, as Compute Engine stores it: the full URL. */
function licenseUrl(value: unknown, i: number): string {
  const s = typeof value === 'string' ? value : '';
  const path = s.startsWith(COMPUTE_BASE) ? s.slice(COMPUTE_BASE.length) : s;
  if (!LICENSE_PATH.test(path)) invalidField(`resource.licenses[${i}]`, s, 'Must be a license URL.');
  return `${COMPUTE_BASE}${path}`;
}

function stringArray(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
    invalidField(field, JSON.stringify(value), 'Must be a list of strings.');
  return value as string[];
}

/**
 * A new image from an images.insert body, checked as Compute Engine checks it (name and family RFC 1035,
 * labels, architecture, guest OS features, storage locations, licenses): PENDING until its archive is read.
 * Only raw disks are served (`rawDisk`, container TAR): an image from a disk, image or snapshot is refused.
 */
export function newImage(
  project: string,
  body: Record<string, unknown>,
  defaultLocation: string,
): ImageResource {
  const name = body.name;
  if (typeof name !== 'string' || !RFC1035.test(name))
    invalidField('resource.name', name ?? '', `Must be a match of regex '${RFC1035_TEXT}'`);
  const family = body.family;
  if (family !== undefined && family !== null && (typeof family !== 'string' || !RFC1035.test(family)))
    invalidField('resource.family', family, `Must be a match of regex '${RFC1035_TEXT}'`);
  for (const other of ['sourceDisk', 'sourceImage', 'sourceSnapshot'])
    if (body[other])
      fail(400, 'invalid', `emulator: images from ${other} are not served; give rawDisk.source`);
  const raw = (body.rawDisk ?? {}) as Record<string, unknown>;
  if (raw.containerType !== undefined && raw.containerType !== 'TAR')
    invalidField('resource.rawDisk.containerType', raw.containerType, 'Must be TAR.');
  const architecture = body.architecture;
  if (architecture !== undefined && (typeof architecture !== 'string' || !ARCHITECTURES.has(architecture)))
    invalidField('resource.architecture', architecture, 'Must be one of X86_64, ARM64.');
  const features = Array.isArray(body.guestOsFeatures) ? (body.guestOsFeatures as { type?: unknown }[]) : [];
  features.forEach((f, i) => {
    if (typeof f?.type !== 'string' || !GUEST_OS_FEATURES.has(f.type))
      invalidField(`resource.guestOsFeatures[${i}].type`, f?.type ?? '', 'Unknown guest OS feature.');
  });
  const locations = stringArray(body.storageLocations, 'resource.storageLocations');
  locations.forEach((l, i) => {
    if (!STORAGE_LOCATION.test(l))
      invalidField(`resource.storageLocations[${i}]`, l, 'Invalid storage location.');
  });
  if (locations.length > 1)
    fail(
      400,
      'invalid',
      "Invalid value for field 'resource.storageLocations': only one location may be given.",
    );
  const licenses = stringArray(body.licenses, 'resource.licenses').map(licenseUrl);
  const labels = validLabels(body.labels, 'resource.labels');
  const description = body.description;
  if (description !== undefined && typeof description !== 'string')
    invalidField('resource.description', description, 'Must be a string.');
  const resource: ImageResource = {
    kind: 'compute#image',
    id: resourceId(),
    creationTimestamp: timestamp(),
    name,
    ...(description ? { description } : {}),
    sourceType: 'RAW',
    rawDisk: { source: '', containerType: 'TAR' },
    status: 'PENDING',
    ...(licenses.length ? { licenses } : {}),
    ...(family ? { family } : {}),
    selfLink: selfLink(`projects/${project}/global/images/${name}`),
    ...(Object.keys(labels).length ? { labels } : {}),
    labelFingerprint: labelFingerprint(labels),
    ...(features.length ? { guestOsFeatures: features.map((f) => ({ type: f.type })) } : {}),
    storageLocations: locations.length ? locations : [defaultLocation],
    ...(architecture ? { architecture } : {}),
  };
  return resource;
}

/** The project's images, by name. */
export class Images {
  private readonly images = new Map<string, ImageRecord>();

  constructor(private readonly project: string) {}

  path(name: string): string {
    return `projects/${this.project}/global/images/${name}`;
  }

  get(name: string): ImageRecord | undefined {
    return this.images.get(name);
  }

  require(name: string): ImageRecord {
    return this.images.get(name) ?? notFound(this.path(name));
  }

  add(resource: ImageResource): ImageRecord {
    if (this.images.has(resource.name))
      fail(409, 'alreadyExists', `The resource '${this.path(resource.name)}' already exists`);
    const record = { resource, iam: new IamPolicy() };
    this.images.set(resource.name, record);
    return record;
  }

  delete(name: string): void {
    this.require(name);
    this.images.delete(name);
  }

  /** Sorted by name, as Compute Engine lists by default. */
  list(): ImageRecord[] {
    return [...this.images.values()].sort((a, b) => (a.resource.name < b.resource.name ? -1 : 1));
  }

  clear(): void {
    this.images.clear();
  }
}
