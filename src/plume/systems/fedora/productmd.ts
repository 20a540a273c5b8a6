import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';

/**
 * productmd metadata a Pungi compose publishes under `metadata/`. Only the fields plume reads are
 * required; the rest pass through, since productmd adds fields between versions.
 */
export const ImageEntry = z.looseObject({
  arch: z.string(),
  checksums: z.looseObject({ sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'a sha256 hex digest') }),
  format: z.string(),
  path: z.string().min(1),
  size: z.number().int().nonnegative().optional(),
  subvariant: z.string(),
  type: z.string(),
  mtime: z.number().optional(),
});
export type ImageEntry = z.infer<typeof ImageEntry>;

const SUPPORTED_VERSIONS = ['1.0', '1.1', '1.2'];

export const ImagesJson = z.object({
  header: z.looseObject({
    type: z.literal('productmd.images').optional(),
    version: z.string(),
  }),
  payload: z.object({
    compose: z.looseObject({
      id: z.string().min(1),
      date: z.string(),
      respin: z.number().int().nonnegative(),
      type: z.string(),
    }),
    images: z.record(z.string(), z.record(z.string(), z.array(ImageEntry))),
  }),
});
export type ImagesJson = z.infer<typeof ImagesJson>;

export const ComposeInfo = z.object({
  header: z.looseObject({ version: z.string() }),
  payload: z.looseObject({
    compose: z.looseObject({
      id: z.string(),
      date: z.string(),
      respin: z.number().int(),
      type: z.string(),
      label: z.string().nullish(),
    }),
    release: z.looseObject({
      short: z.string(),
      version: z.string(),
      name: z.string().optional(),
      type: z.string().optional(),
      is_layered: z.boolean().optional(),
    }),
  }),
});
export type ComposeInfo = z.infer<typeof ComposeInfo>;

function issues(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
    .join('; ');
}

export function parseImagesJson(raw: Buffer | string, where: string): ImagesJson {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString());
  } catch (err) {
    throw new PlumeError(
      'input',
      `${where} is not JSON (${(err as Error).message})`,
      'the compose metadata is damaged or not a productmd file',
    );
  }
  const version = (data as { header?: { version?: unknown } })?.header?.version;
  if (typeof version === 'string' && !SUPPORTED_VERSIONS.includes(version))
    throw new PlumeError(
      'input',
      `${where} is productmd images version ${version}, which plume does not know`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}; update plume`,
    );
  const parsed = ImagesJson.safeParse(data);
  if (!parsed.success)
    throw new PlumeError('input', `${where} is not a productmd images file: ${issues(parsed.error)}`);
  return parsed.data;
}

export function parseComposeInfo(raw: Buffer | string, where: string): ComposeInfo {
  let data: unknown;
  try {
    data = JSON.parse(raw.toString());
  } catch (err) {
    throw new PlumeError('input', `${where} is not JSON (${(err as Error).message})`);
  }
  const parsed = ComposeInfo.safeParse(data);
  if (!parsed.success)
    throw new PlumeError('input', `${where} is not a productmd composeinfo file: ${issues(parsed.error)}`);
  return parsed.data;
}

/** Every image of a compose, flattened, with the variant it is filed under. */
export function allImages(images: ImagesJson): (ImageEntry & { variant: string })[] {
  return Object.entries(images.payload.images).flatMap(([variant, arches]) =>
    Object.values(arches).flatMap((list) => list.map((image) => ({ ...image, variant }))),
  );
}
