import { PlumeError } from '../../../shared/errors.js';
import { fetchDocument } from '../../source/fetch.js';
import { checkSource, childUrl } from '../../source/policy.js';
import type { ComposeDecision, ComposeFacts, ComposeWatch, LocateContext, ReleaseRequest } from '../types.js';
import { selectImage } from './images.js';
import { composeMeaning } from './meaning.js';
import { parseComposeInfo, parseImagesJson, type ImagesJson } from './productmd.js';

export const FEDORA_ARCHES = ['x86_64', 'aarch64'] as const;

/** `…/Fedora-Cloud-30-20190611.0` and `…/Fedora-Cloud-30-20190611.0/compose` both mean the latter. */
export function composeLocation(location: string): string {
  const trimmed = location.replace(/\/+$/, '');
  return /\/compose$/.test(trimmed) ? trimmed : `${trimmed}/compose`;
}

/**
 * Messages that carry only the id, location and status (and old fedmsg ones) leave the label, type and
 * release to the compose's own composeinfo.json. A compose without one is judged on what is known.
 */
async function completeFacts(facts: ComposeFacts, location: URL, ctx: LocateContext): Promise<ComposeFacts> {
  const complete =
    facts.releaseShort !== undefined &&
    facts.releaseVersion !== undefined &&
    facts.type !== undefined &&
    (facts.label !== undefined || facts.type !== 'production');
  if (complete) return facts;
  try {
    const url = childUrl(location, 'metadata/composeinfo.json');
    const info = parseComposeInfo(await fetchDocument(url, ctx.policy, ctx.signal), url.href);
    const p = info.payload;
    return {
      ...facts,
      releaseShort: facts.releaseShort ?? p.release.short,
      releaseVersion: facts.releaseVersion ?? p.release.version,
      releaseType: facts.releaseType ?? p.release.type,
      type: facts.type ?? p.compose.type,
      label: facts.label ?? p.compose.label ?? undefined,
      date: facts.date ?? p.compose.date,
      respin: facts.respin ?? p.compose.respin,
    };
  } catch (err) {
    // Not there (or not readable): judge on the message and the id. A network failure is worth another try.
    if (err instanceof PlumeError && !err.retryable) return facts;
    throw err;
  }
}

/**
 * What a finished compose calls for: ignore it (not ours, or a channel nobody watches), release one
 * request per image type and arch the compose holds, or report it broken when a watched compose holds
 * nothing to publish (so a layout change is loud, not months of silence).
 */
export async function releasesForCompose(
  raw: ComposeFacts,
  watch: ComposeWatch,
  ctx: LocateContext,
): Promise<ComposeDecision> {
  const location = checkSource(composeLocation(raw.location), ctx.policy);
  const facts = await completeFacts(raw, location, ctx);
  const meaning = composeMeaning({
    composeId: facts.id,
    releaseShort: facts.releaseShort,
    composeType: facts.type,
    composeLabel: facts.label,
    releaseVersion: facts.releaseVersion,
    location: location.href,
  });
  if (!meaning.ours) return { kind: 'ignore', reason: meaning.reason };
  const { channel } = meaning;
  if (!watch.channels.includes(channel))
    return { kind: 'ignore', reason: `${facts.id} is a ${channel} compose, a channel not watched` };
  const types = meaning.imageTypes.filter((t) => !watch.imageTypes || watch.imageTypes.includes(t));
  const arches = FEDORA_ARCHES.filter((a) => watch.arches.includes(a));
  if (types.length === 0 || arches.length === 0)
    return {
      kind: 'ignore',
      reason: `${facts.id} has ${meaning.imageTypes.join(', ')} images; none of the watched types and arches`,
    };

  const imagesUrl = childUrl(location, 'metadata/images.json');
  let images: ImagesJson;
  try {
    images = parseImagesJson(await fetchDocument(imagesUrl, ctx.policy, ctx.signal), imagesUrl.href);
  } catch (err) {
    // A finished compose of a watched channel without readable metadata is broken, not "try later".
    if (err instanceof PlumeError && !err.retryable)
      return { kind: 'broken', channel, reason: err.oneLine() };
    throw err;
  }
  const requests: ReleaseRequest[] = [];
  const missing: string[] = [];
  for (const imageType of types)
    for (const arch of arches) {
      try {
        selectImage(images, imageType, arch);
      } catch (err) {
        if (!(err instanceof PlumeError) || err.kind !== 'input') throw err;
        missing.push(err.oneLine());
        continue;
      }
      requests.push({
        system: 'fedora',
        channel,
        arch,
        imageType,
        compose: location.href,
        composeId: facts.id,
        version: meaning.version,
        ...(facts.respin !== undefined ? { respin: facts.respin } : {}),
        ...(facts.label ? { label: facts.label } : {}),
        ...(watch.environment ? { environment: watch.environment } : {}),
      });
    }
  if (requests.length === 0) return { kind: 'broken', channel, reason: missing.join('; ') };
  for (const m of missing) ctx.log.warn({ compose: facts.id, channel }, `compose is missing an image: ${m}`);
  return { kind: 'release', channel, requests };
}
