import { fail } from './errors.js';

export interface Bucket {
  name: string;
  /** Cloud Storage's location name, upper case: US, EU, ASIA, US-CENTRAL1... */
  location: string;
  created: Date;
}

const BUCKET_NAME = /^[a-z0-9][-a-z0-9_.]{1,61}[a-z0-9]$/;

/**
 * The project's buckets. The Firebase emulator makes a bucket on first use of any name and cannot say what
 * a bucket is (buckets.get is not served), so the proxy keeps the list and answers for buckets itself:
 * an object call into a bucket not made here is refused as Cloud Storage refuses it.
 */
export class Buckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly projectNumber: string) {}

  create(name: string, location: string): Bucket {
    if (!BUCKET_NAME.test(name)) fail(400, 'invalid', 'Invalid bucket name: ' + `'${name}'`);
    if (this.buckets.has(name))
      fail(
        409,
        'conflict',
        'Your previous request to create the named bucket succeeded and you already own it.',
      );
    const bucket = { name, location: location.toUpperCase(), created: new Date() };
    this.buckets.set(name, bucket);
    return bucket;
  }

  get(name: string): Bucket | undefined {
    return this.buckets.get(name);
  }

  /** The bucket, or Cloud Storage's 404. */
  require(name: string): Bucket {
    return this.get(name) ?? fail(404, 'notFound', 'The specified bucket does not exist.');
  }

  list(): Bucket[] {
    return [...this.buckets.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  clear(): void {
    this.buckets.clear();
  }

  /** The bucket resource as buckets.get answers it. */
  resource(b: Bucket, base: string): Record<string, unknown> {
    const time = b.created.toISOString();
    return {
      kind: 'storage#bucket',
      selfLink: `${base}/storage/v1/b/${b.name}`,
      id: b.name,
      name: b.name,
      projectNumber: this.projectNumber,
      metageneration: '1',
      location: b.location,
      storageClass: 'STANDARD',
      etag: 'CAE=',
      timeCreated: time,
      updated: time,
      locationType: /-/.test(b.location) ? 'region' : 'multi-region',
      iamConfiguration: {
        bucketPolicyOnly: { enabled: true, lockedTime: time },
        uniformBucketLevelAccess: { enabled: true, lockedTime: time },
        publicAccessPrevention: 'enforced',
      },
      rpo: 'DEFAULT',
    };
  }
}
