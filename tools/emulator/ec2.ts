import { forwardOf, type Call, type HandlerDeps } from './context.js';
import type { EbsModel } from './ebs.js';
import type { BlockDevice, Ec2Model, ImageAttributes, ImageRecord } from './ec2-model.js';
import {
  bool,
  createTagsParams,
  filters,
  flat,
  globMatch,
  groups,
  int,
  list,
  tagSpecifications,
  withFilters,
  type Filter,
  type Flat,
  type Tag,
} from './query.js';
import { ec2Ok, errorReply, xmlReply, type BufferedReply, type Reply } from './replies.js';
import {
  buildXml,
  child,
  escapeXml,
  itemList,
  items,
  parseXml,
  responseBody,
  setItems,
  text,
  type XmlNode,
} from './xml.js';

/** moto invents one of these per image it registers or copies; AWS has no such snapshot. */
const INVENTED_SNAPSHOT = /^Auto-created snapshot for AMI ami-/;
const AMI_NAME = /^[a-zA-Z0-9()[\] ./'@_-]{3,128}$/;

class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

function fail(err: Ec2Error): BufferedReply {
  return errorReply('ec2', { code: err.code, message: err.message, status: err.status });
}

interface SnapshotInfo {
  volumeSize: number;
  encrypted: boolean;
}

/** Values of a DescribeImages filter as read from an (already patched) image item. */
const IMAGE_FILTERS: Record<string, (image: XmlNode) => (string | undefined)[]> = {
  state: (i) => [text(i, 'imageState')],
  architecture: (i) => [text(i, 'architecture')],
  'virtualization-type': (i) => [text(i, 'virtualizationType')],
  'root-device-type': (i) => [text(i, 'rootDeviceType')],
  'root-device-name': (i) => [text(i, 'rootDeviceName')],
  'ena-support': (i) => [text(i, 'enaSupport')],
  'sriov-net-support': (i) => [text(i, 'sriovNetSupport')],
  hypervisor: (i) => [text(i, 'hypervisor')],
  'source-image-id': (i) => [text(i, 'sourceImageId')],
  'source-image-region': (i) => [text(i, 'sourceImageRegion')],
  'block-device-mapping.device-name': (i) => items(i, 'blockDeviceMapping').map((b) => text(b, 'deviceName')),
  'block-device-mapping.snapshot-id': (i) => bdmEbs(i, 'snapshotId'),
  'block-device-mapping.volume-size': (i) => bdmEbs(i, 'volumeSize'),
  'block-device-mapping.volume-type': (i) => bdmEbs(i, 'volumeType'),
  'block-device-mapping.delete-on-termination': (i) => bdmEbs(i, 'deleteOnTermination'),
  'block-device-mapping.encrypted': (i) => bdmEbs(i, 'encrypted'),
};

const SNAPSHOT_FILTERS: Record<string, (snapshot: XmlNode) => (string | undefined)[]> = {
  status: (s) => [text(s, 'status')],
};

function bdmEbs(image: XmlNode, field: string): (string | undefined)[] {
  return items(image, 'blockDeviceMapping').map((b) => text(child(b, 'ebs'), field));
}

/**
 * DescribeImages paging as EC2 documents it: MaxResults from 5 to 1000, not with ImageIds, NextToken from
 * the previous page. Undefined when the call does not ask for pages (all results at once).
 */
function imagePage(params: URLSearchParams): { max: number; after?: string } | undefined {
  const raw = params.get('MaxResults');
  const token = params.get('NextToken');
  if (raw === null && token === null) return undefined;
  if (raw !== null && [...params.keys()].some((k) => k.startsWith('ImageId.')))
    throw new Ec2Error(
      'InvalidParameterCombination',
      'The parameter imageIdsSet cannot be used with the parameter maxResults',
    );
  const max = raw === null ? 1000 : Number(raw);
  if (!Number.isInteger(max) || max < 5 || max > 1000)
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value ( ${raw} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
    );
  if (token === null) return { max };
  const after = Buffer.from(token, 'base64url').toString('utf8');
  if (!/^ami-[0-9a-f]+$/.test(after))
    throw new Ec2Error('InvalidParameterValue', `The token '${token}' is invalid.`);
  return { max, after };
}

/** Split filters into those moto can apply and those only the proxy's patched view can answer. */
function splitFilters(all: Filter[], ours: Record<string, unknown>): { moto: Filter[]; proxy: Filter[] } {
  return {
    moto: all.filter((f) => !(f.name in ours)),
    proxy: all.filter((f) => f.name in ours),
  };
}

function passes(
  node: XmlNode,
  fs: Filter[],
  table: Record<string, (n: XmlNode) => (string | undefined)[]>,
): boolean {
  return fs.every((f) => {
    const values = table[f.name]!(node).filter((v): v is string => v !== undefined);
    return values.some((v) => f.values.some((p) => globMatch(p, v)));
  });
}

function setOrDelete(node: XmlNode, name: string, value: string | boolean | undefined): void {
  if (value === undefined) delete node[name];
  else node[name] = String(value);
}

function bdmXml(b: BlockDevice): XmlNode {
  const out: XmlNode = { deviceName: b.deviceName };
  if (b.virtualName !== undefined) out.virtualName = b.virtualName;
  if (b.noDevice) out.noDevice = '';
  if (b.ebs) {
    const ebs: XmlNode = {};
    if (b.ebs.deleteOnTermination !== undefined) ebs.deleteOnTermination = String(b.ebs.deleteOnTermination);
    if (b.ebs.iops !== undefined) ebs.iops = String(b.ebs.iops);
    if (b.ebs.snapshotId !== undefined) ebs.snapshotId = b.ebs.snapshotId;
    if (b.ebs.volumeSize !== undefined) ebs.volumeSize = String(b.ebs.volumeSize);
    if (b.ebs.volumeType !== undefined) ebs.volumeType = b.ebs.volumeType;
    if (b.ebs.throughput !== undefined) ebs.throughput = String(b.ebs.throughput);
    if (b.ebs.encrypted !== undefined) ebs.encrypted = String(b.ebs.encrypted);
    out.ebs = ebs;
  }
  return out;
}

function parseBlockDevices(src: Flat): BlockDevice[] {
  return groups(src, 'BlockDeviceMapping').map((g) => {
    const dev: BlockDevice = { deviceName: g.get('DeviceName') ?? '' };
    if (g.has('VirtualName')) dev.virtualName = g.get('VirtualName');
    if (g.has('NoDevice')) dev.noDevice = true;
    if ([...g.keys()].some((k) => k.startsWith('Ebs.'))) {
      dev.ebs = {
        snapshotId: g.get('Ebs.SnapshotId'),
        volumeSize: int(g.get('Ebs.VolumeSize')),
        volumeType: g.get('Ebs.VolumeType'),
        deleteOnTermination: bool(g.get('Ebs.DeleteOnTermination')),
        encrypted: bool(g.get('Ebs.Encrypted')),
        iops: int(g.get('Ebs.Iops')),
        throughput: int(g.get('Ebs.Throughput')),
      };
    }
    return dev;
  });
}

function checkName(name: string | undefined): string {
  if (name === undefined)
    throw new Ec2Error('MissingParameter', 'The request must contain the parameter name');
  if (!AMI_NAME.test(name)) {
    throw new Ec2Error(
      'InvalidAMIName.Malformed',
      `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, spaces and ` +
        `only the following special characters: ( ) [ ] . / - ' @ _ (got '${name}')`,
    );
  }
  return name;
}

function fingerprint(params: URLSearchParams): string {
  return [...params.entries()]
    .filter(([k]) => !['ClientToken', 'Action', 'Version'].includes(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** EC2 calls the proxy has to handle itself, around or instead of moto. */
export class Ec2Handler {
  constructor(
    private readonly model: Ec2Model,
    private readonly ebs: EbsModel,
    private readonly deps: HandlerDeps,
  ) {}

  async handle(call: Call): Promise<Reply> {
    try {
      switch (call.operation) {
        case 'RegisterImage':
          return await this.registerImage(call);
        case 'CopyImage':
          return await this.copyImage(call);
        case 'DescribeImages':
          return await this.describeImages(call);
        case 'DescribeImageAttribute':
          return await this.describeImageAttribute(call);
        case 'DeregisterImage':
          return await this.deregisterImage(call);
        case 'DescribeSnapshots':
          return await this.describeSnapshots(call);
        case 'DeleteSnapshot':
          return await this.deleteSnapshot(call);
        case 'EnableImageDeprecation':
          return await this.enableDeprecation(call);
        case 'DisableImageDeprecation':
          return await this.disableDeprecation(call);
        default:
          return await this.deps.upstream.stream(forwardOf(call));
      }
    } catch (e) {
      if (e instanceof Ec2Error) return fail(e);
      throw e;
    }
  }

  private params(call: Call): URLSearchParams {
    return call.params ?? new URLSearchParams();
  }

  /** An EC2 call of the proxy's own; a failure becomes the same error for the client. */
  private async internal(call: Call, region: string, action: string, params: Record<string, string>) {
    const res = await this.deps.upstream.ec2(region, call.accessKeyId, action, params);
    if (res.status !== 200) {
      const code = /<Code>([^<]+)<\/Code>/.exec(res.raw)?.[1] ?? 'InternalError';
      const message = /<Message>([^<]*)<\/Message>/.exec(res.raw)?.[1] || `${action} failed in ${region}`;
      throw new Ec2Error(code, message, res.status >= 500 ? 500 : res.status);
    }
    return res.body;
  }

  private async snapshotsOf(call: Call, region: string): Promise<Map<string, SnapshotInfo>> {
    const body = await this.internal(call, region, 'DescribeSnapshots', { 'Owner.1': 'self' });
    const out = new Map<string, SnapshotInfo>();
    for (const s of items(body, 'snapshotSet')) {
      if (INVENTED_SNAPSHOT.test(text(s, 'description') ?? '')) continue;
      out.set(text(s, 'snapshotId') ?? '', {
        volumeSize: Number(text(s, 'volumeSize') ?? 0),
        encrypted: text(s, 'encrypted') === 'true',
      });
    }
    return out;
  }

  private async applyTags(call: Call, region: string, ids: string[], tags: Tag[]): Promise<void> {
    if (!ids.length || !tags.length) return;
    await this.internal(call, region, 'CreateTags', createTagsParams(ids, tags));
  }

  private reserve(region: string, name: string): void {
    const holder = this.model.reserveName(region, name);
    if (holder !== undefined) {
      throw new Ec2Error('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${holder}`);
    }
  }

  private failureOf(call: Call): ImageRecord['failure'] {
    const rule = call.imageFailure;
    if (!rule) return undefined;
    return {
      code: rule.code ?? 'Server.InternalError',
      message: rule.message ?? 'Server.InternalError: Internal error on launch',
    };
  }

  private async registerImage(call: Call): Promise<Reply> {
    const params = this.params(call);
    const src = flat(params);
    const name = checkName(params.get('Name') ?? undefined);
    const tagSpecs = tagSpecifications(src);
    const bad = tagSpecs.find((t) => t.resourceType !== 'image');
    if (bad) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `'${bad.resourceType}' is not a valid taggable resource type for this operation.`,
      );
    }
    const region = call.region;
    this.reserve(region, name);
    try {
      const devices = parseBlockDevices(src);
      await this.completeDevices(call, region, devices);
      const attributes: ImageAttributes = {
        // AWS's documented defaults when these are left out.
        architecture: params.get('Architecture') ?? 'i386',
        virtualizationType: params.get('VirtualizationType') ?? 'paravirtual',
        rootDeviceName: params.get('RootDeviceName') ?? '/dev/sda1',
        enaSupport: bool(params.get('EnaSupport') ?? undefined),
        sriovNetSupport: params.get('SriovNetSupport') ?? undefined,
        bootMode: params.get('BootMode') ?? undefined,
        imdsSupport: params.get('ImdsSupport') ?? undefined,
        tpmSupport: params.get('TpmSupport') ?? undefined,
        blockDeviceMappings: devices,
      };
      const reply = await this.deps.upstream.buffered(forwardOf(call));
      if (reply.status !== 200) {
        this.model.releaseName(region, name);
        return reply;
      }
      const id = text(responseBody(parseXml(reply.body.toString('utf8'))), 'imageId') ?? '';
      await this.applyTags(
        call,
        region,
        [id],
        tagSpecs.flatMap((t) => t.tags),
      );
      this.model.add({
        id,
        region,
        name,
        attributes,
        createdAt: Date.now(),
        failure: this.failureOf(call),
        createdSnapshots: [],
      });
      return reply;
    } catch (e) {
      this.model.releaseName(region, name);
      throw e;
    }
  }

  /** Check the mapped snapshots exist and fill in what AWS fills in when a field is left out. */
  private async completeDevices(call: Call, region: string, devices: BlockDevice[]): Promise<void> {
    const wanted = devices.filter((d) => d.ebs?.snapshotId);
    if (!wanted.length) return;
    const known = await this.snapshotsOf(call, region);
    for (const d of wanted) {
      const ebs = d.ebs!;
      const snap = known.get(ebs.snapshotId!);
      if (!snap)
        throw new Ec2Error('InvalidSnapshot.NotFound', `The snapshot '${ebs.snapshotId}' does not exist.`);
      if (ebs.volumeSize !== undefined && ebs.volumeSize < snap.volumeSize) {
        throw new Ec2Error(
          'InvalidBlockDeviceMapping',
          `Volume of size ${ebs.volumeSize}GB is smaller than snapshot '${ebs.snapshotId}', expect size >= ` +
            `${snap.volumeSize}GB`,
        );
      }
      ebs.volumeSize ??= snap.volumeSize;
      ebs.volumeType ??= 'standard';
      ebs.deleteOnTermination ??= true;
      ebs.encrypted ??= snap.encrypted;
    }
  }

  private async copyImage(call: Call): Promise<Reply> {
    const params = this.params(call);
    const token = params.get('ClientToken');
    if (!token) return this.copyNew(call);
    // AWS answers a repeated token with the first copy's ImageId instead of copying again.
    const key = `${call.region}\0${token}`;
    const print = fingerprint(params);
    const known = this.model.copyTokens.get(key);
    if (known) {
      if (known.fingerprint !== print) {
        throw new Ec2Error(
          'IdempotentParameterMismatch',
          'The client token you have provided is associated with a resource that is already deleted or ' +
            'with a request with different parameters.',
        );
      }
      const first = await known.result;
      return { ...first, body: Buffer.from(first.body) };
    }
    const result = this.copyNew(call);
    this.model.copyTokens.set(key, { fingerprint: print, result });
    try {
      const reply = await result;
      if (reply.status !== 200) this.model.copyTokens.delete(key);
      return reply;
    } catch (e) {
      this.model.copyTokens.delete(key);
      throw e;
    }
  }

  private async copyNew(call: Call): Promise<BufferedReply> {
    try {
      return await this.copy(call);
    } catch (e) {
      if (e instanceof Ec2Error) return fail(e);
      throw e;
    }
  }

  private async copy(call: Call): Promise<BufferedReply> {
    const params = this.params(call);
    const src = flat(params);
    const region = call.region;
    const name = checkName(params.get('Name') ?? undefined);
    const sourceId = params.get('SourceImageId') ?? '';
    const sourceRegion = params.get('SourceRegion') ?? '';
    const tagSpecs = tagSpecifications(src);
    const bad = tagSpecs.find((t) => t.resourceType !== 'image' && t.resourceType !== 'snapshot');
    if (bad) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `'${bad.resourceType}' is not a valid taggable resource type for this operation.`,
      );
    }
    const source = this.model.images.get(sourceId);
    if (source && source.region === sourceRegion) {
      const state = this.model.state(source);
      if (state !== 'available') {
        throw new Ec2Error('IncorrectState', `Image ${sourceId} is not in a valid state: ${state}`);
      }
    }
    this.reserve(region, name);
    try {
      const reply = await this.deps.upstream.buffered(forwardOf(call));
      if (reply.status !== 200) {
        this.model.releaseName(region, name);
        return reply;
      }
      const id = text(responseBody(parseXml(reply.body.toString('utf8'))), 'imageId') ?? '';
      // moto gives the copy an invented snapshot; AWS copies each snapshot of the source instead.
      const attributes = source?.attributes && structuredClone(source.attributes);
      const created: string[] = [];
      for (const dev of attributes?.blockDeviceMappings ?? []) {
        if (!dev.ebs?.snapshotId) continue;
        const body = await this.internal(call, region, 'CopySnapshot', {
          SourceRegion: sourceRegion,
          SourceSnapshotId: dev.ebs.snapshotId,
          Description:
            `Copied for DestinationAmi ${id} from SourceAmi ${sourceId} for SourceSnapshot ` +
            `${dev.ebs.snapshotId}. Task created on ${new Date().toISOString()}.`,
        });
        dev.ebs.snapshotId = text(body, 'snapshotId') ?? '';
        created.push(dev.ebs.snapshotId);
      }
      const imageTags = tagSpecs.filter((t) => t.resourceType === 'image').flatMap((t) => t.tags);
      if (params.get('CopyImageTags') === 'true')
        imageTags.unshift(...(await this.tagsOf(call, sourceRegion, sourceId)));
      await this.applyTags(call, region, [id], imageTags);
      await this.applyTags(
        call,
        region,
        created,
        tagSpecs.filter((t) => t.resourceType === 'snapshot').flatMap((t) => t.tags),
      );
      this.model.add({
        id,
        region,
        name,
        attributes,
        createdAt: Date.now(),
        failure: this.failureOf(call),
        source: { imageId: sourceId, region: sourceRegion },
        createdSnapshots: created,
      });
      return reply;
    } catch (e) {
      this.model.releaseName(region, name);
      throw e;
    }
  }

  private async tagsOf(call: Call, region: string, resourceId: string): Promise<Tag[]> {
    const body = await this.internal(call, region, 'DescribeTags', {
      'Filter.1.Name': 'resource-id',
      'Filter.1.Value.1': resourceId,
    });
    return items(body, 'tagSet')
      .map((t) => ({ key: text(t, 'key') ?? '', value: text(t, 'value') ?? '' }))
      .filter((t) => !t.key.startsWith('aws:'));
  }

  private patchImage(image: XmlNode, now: number): void {
    const id = text(image, 'imageId') ?? '';
    const rec = this.model.images.get(id);
    if (rec) {
      const state = this.model.state(rec, now);
      image.imageState = state;
      if (state === 'failed' && rec.failure) image.stateReason = { ...rec.failure };
      else delete image.stateReason;
      const a = rec.attributes;
      if (a) {
        image.architecture = a.architecture;
        image.virtualizationType = a.virtualizationType;
        image.hypervisor = 'xen';
        image.imageLocation = `${text(image, 'imageOwnerId') ?? ''}/${rec.name}`;
        image.rootDeviceName = a.rootDeviceName;
        image.rootDeviceType = 'ebs';
        image.platformDetails = 'Linux/UNIX';
        image.usageOperation = 'RunInstances';
        image.blockDeviceMapping = itemList(a.blockDeviceMappings.map(bdmXml));
        setOrDelete(image, 'enaSupport', a.enaSupport);
        setOrDelete(image, 'sriovNetSupport', a.sriovNetSupport);
        setOrDelete(image, 'bootMode', a.bootMode);
        setOrDelete(image, 'imdsSupport', a.imdsSupport);
        setOrDelete(image, 'tpmSupport', a.tpmSupport);
      }
      if (rec.source) {
        image.sourceImageId = rec.source.imageId;
        image.sourceImageRegion = rec.source.region;
      }
    }
    setOrDelete(image, 'deprecationTime', this.model.deprecations.get(id));
  }

  private async describeImages(call: Call): Promise<Reply> {
    const params = this.params(call);
    const page = imagePage(params);
    const { moto, proxy } = splitFilters(filters(flat(params)), IMAGE_FILTERS);
    const forwarded = withFilters(params, moto);
    // moto ignores paging and answers everything; the proxy pages what it shows.
    forwarded.delete('MaxResults');
    forwarded.delete('NextToken');
    const body = Buffer.from(forwarded.toString(), 'utf8');
    const reply = await this.deps.upstream.buffered(forwardOf(call, body));
    if (reply.status !== 200) return reply;
    const doc = parseXml(reply.body.toString('utf8'));
    const root = responseBody(doc);
    const now = Date.now();
    let kept = items(root, 'imagesSet').filter((image) => {
      this.patchImage(image, now);
      return passes(image, proxy, IMAGE_FILTERS);
    });
    delete root.nextToken;
    if (page) {
      // A stable order (by id), so a token names the same place whatever was created since.
      kept.sort((a, b) => (text(a, 'imageId') ?? '').localeCompare(text(b, 'imageId') ?? ''));
      const start = page.after ? kept.findIndex((i) => (text(i, 'imageId') ?? '') > page.after!) : 0;
      const rest = start < 0 ? [] : kept.slice(start);
      kept = rest.slice(0, page.max);
      if (rest.length > page.max)
        root.nextToken = Buffer.from(text(kept.at(-1), 'imageId') ?? '', 'utf8').toString('base64url');
    }
    setItems(root, 'imagesSet', kept);
    return xmlReply(200, buildXml(doc));
  }

  private async describeImageAttribute(call: Call): Promise<Reply> {
    const params = this.params(call);
    const id = params.get('ImageId') ?? '';
    const attribute = params.get('Attribute') ?? '';
    const a = this.model.images.get(id)?.attributes;
    // moto answers these with a fixed value or a crash; the model knows what was registered.
    const known: Record<string, string | undefined> | undefined = a && {
      bootMode: a.bootMode,
      sriovNetSupport: a.sriovNetSupport,
      imdsSupport: a.imdsSupport,
      tpmSupport: a.tpmSupport,
    };
    if (!known || !(attribute in known)) return this.deps.upstream.stream(forwardOf(call));
    const value = known[attribute];
    const inner =
      value === undefined
        ? `<${attribute}/>`
        : `<${attribute}><value>${escapeXml(value)}</value></${attribute}>`;
    return ec2Ok('DescribeImageAttribute', `<imageId>${escapeXml(id)}</imageId>${inner}`);
  }

  private async deregisterImage(call: Call): Promise<Reply> {
    const reply = await this.deps.upstream.buffered(forwardOf(call));
    if (reply.status === 200) this.model.remove(this.params(call).get('ImageId') ?? '');
    return reply;
  }

  private async describeSnapshots(call: Call): Promise<Reply> {
    const params = this.params(call);
    const src = flat(params);
    const { moto, proxy } = splitFilters(filters(src), SNAPSHOT_FILTERS);
    const body = Buffer.from(withFilters(params, moto).toString(), 'utf8');
    const reply = await this.deps.upstream.buffered(forwardOf(call, body));
    if (reply.status !== 200) return reply;
    const doc = parseXml(reply.body.toString('utf8'));
    const root = responseBody(doc);
    const asked = new Set(list(src, 'SnapshotId'));
    const now = Date.now();
    const kept: XmlNode[] = [];
    for (const snap of items(root, 'snapshotSet')) {
      const id = text(snap, 'snapshotId') ?? '';
      if (INVENTED_SNAPSHOT.test(text(snap, 'description') ?? '')) {
        if (asked.has(id))
          throw new Ec2Error('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
        continue;
      }
      const status = this.ebs.status(id, now) ?? this.model.copiedSnapshotStatus(id);
      if (status === 'pending') {
        snap.status = 'pending';
        // Still being written, or sealed and being processed: roughly what AWS shows in each phase.
        snap.progress = this.ebs.get(id) && !this.ebs.stats(id)?.completed ? '0%' : '99%';
      } else if (status === 'error') {
        snap.status = 'error';
      }
      if (passes(snap, proxy, SNAPSHOT_FILTERS)) kept.push(snap);
    }
    setItems(root, 'snapshotSet', kept);
    return xmlReply(200, buildXml(doc));
  }

  private async deleteSnapshot(call: Call): Promise<Reply> {
    const id = this.params(call).get('SnapshotId') ?? '';
    const user = this.model.snapshotUser(id);
    if (user)
      throw new Ec2Error('InvalidSnapshot.InUse', `The snapshot ${id} is currently in use by ${user}`);
    const reply = await this.deps.upstream.buffered(forwardOf(call));
    if (reply.status === 200) {
      this.ebs.delete(id);
      this.model.forgetSnapshot(id);
    } else if (reply.body.includes('InvalidSnapshot.NotFound')) {
      // moto's message here is "UnknownError"; say what AWS says.
      throw new Ec2Error('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
    }
    return reply;
  }

  private async imageExists(call: Call, id: string): Promise<boolean> {
    if (this.model.images.has(id)) return true;
    if (!/^ami-[0-9a-f]+$/.test(id)) return false;
    const res = await this.deps.upstream.ec2(call.region, call.accessKeyId, 'DescribeImages', {
      'ImageId.1': id,
    });
    return res.status === 200 && items(res.body, 'imagesSet').length > 0;
  }

  private async enableDeprecation(call: Call): Promise<Reply> {
    const params = this.params(call);
    const id = params.get('ImageId') ?? '';
    const at = params.get('DeprecateAt');
    if (!at) throw new Ec2Error('MissingParameter', 'The request must contain the parameter DeprecateAt');
    const when = Date.parse(at);
    if (Number.isNaN(when))
      throw new Ec2Error('InvalidParameterValue', `Invalid value '${at}' for DeprecateAt`);
    if (when < Date.now() - 5000) {
      throw new Ec2Error('InvalidParameterValue', 'The deprecation time cannot be in the past');
    }
    if (!(await this.imageExists(call, id))) {
      throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
    }
    // AWS keeps minutes: seconds are rounded to the nearest minute.
    const rounded = Math.round(when / 60_000) * 60_000;
    this.model.deprecations.set(id, new Date(rounded).toISOString());
    return ec2Ok('EnableImageDeprecation', '<return>true</return>');
  }

  private async disableDeprecation(call: Call): Promise<Reply> {
    const id = this.params(call).get('ImageId') ?? '';
    if (!(await this.imageExists(call, id))) {
      throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
    }
    this.model.deprecations.delete(id);
    return ec2Ok('DisableImageDeprecation', '<return>true</return>');
  }
}
