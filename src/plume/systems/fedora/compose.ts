import { PlumeError } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';
import { childUrl } from '../../source/policy.js';
import type { ComposeDecision, ComposeFacts, ComposeWatch, LocateContext, ReleaseRequest } from '../types.js';
import { composeMeaning } from './meaning.js';
import { parseComposeInfo, parseImagesJson, type ImagesJson } from './productmd.js';
import { FEDORA_ARCHES, planCloudImages } from './selection.js';

export { FEDORA_ARCHES };

/** `…/Fedora-Cloud-30-20190611.0` and `…/Fedora-Cloud-30-20190611.0/compose` both mean the latter. */
export function composeLocation(location: string): string {
  const trimmed = location.replace(/\/+$/, '');
  return /\/compose$/.test(trimmed) ? trimmed : `${trimmed}/compose`;
}

/** The fields of a compose its composeinfo.json states, by their names in ComposeFacts. */
const STATED = ['releaseShort', 'releaseVersion', 'releaseType', 'type', 'label', 'date', 'respin'] as const;

/**
 * The compose's own composeinfo.json is the truth about it (release, version, type, label, respin): the
 * message only says where to look, and a message can be wrong (Fedora 28's release candidate went out
 * labelled RC-1.1 while a message said RC-20180425.0). Where the two differ, one INFO line says so. A
 * compose without the file (older composes) is judged on the message and its id.
 */
async function composeFacts(facts: ComposeFacts, location: URL, ctx: LocateContext): Promise<ComposeFacts> {
  let stated: Partial<ComposeFacts>;
  let statedId: string | undefined;
  try {
    const url = childUrl(location, 'metadata/composeinfo.json');
    const p = parseComposeInfo(await ctx.source.document(url), url.href).payload;
    stated = {
      releaseShort: p.release.short,
      releaseVersion: p.release.version,
      type: p.compose.type,
      date: p.compose.date,
      respin: p.compose.respin,
      ...(p.release.type !== undefined ? { releaseType: p.release.type } : {}),
      // `label: null` says the compose is unlabelled (a nightly): a statement too, unlike no key at all.
      ...('label' in p.compose ? { label: p.compose.label ?? undefined } : {}),
    };
    if (p.compose.id !== facts.id) statedId = p.compose.id;
  } catch (err) {
    // Not there (or not readable): judge on the message and the id. A network failure is worth another try.
    if (err instanceof PlumeError && !err.retryable) return facts;
    throw err;
  }
  // The message points at another compose than the one it names: nothing it says can be trusted.
  if (statedId !== undefined)
    throw new PlumeError(
      'input',
      `the message names compose ${facts.id}, but its location ${location.href} holds compose ${statedId}`,
      'nothing is published from it; check the message',
    );
  reportDisagreement(facts, stated, ctx.log);
  return { ...facts, ...stated };
}

function reportDisagreement(message: ComposeFacts, stated: Partial<ComposeFacts>, log: Logger): void {
  const differ = STATED.filter(
    (k) => k in stated && message[k] !== undefined && String(message[k]) !== String(stated[k]),
  );
  if (differ.length === 0) return;
  const show = (v: unknown) => (v === undefined ? 'none' : JSON.stringify(v));
  log.info(
    { compose: message.id },
    `following the compose's composeinfo.json where the message differs: ${differ
      .map((k) => `${k} ${show(stated[k])} (the message said ${show(message[k])})`)
      .join(', ')}`,
  );
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
  const location = ctx.source.check(composeLocation(raw.location));
  const meaningOf = (f: ComposeFacts) =>
    composeMeaning({
      composeId: f.id,
      releaseShort: f.releaseShort,
      composeType: f.type,
      composeLabel: f.label ?? null,
      releaseVersion: f.releaseVersion,
      location: location.href,
    });
  let facts: ComposeFacts;
  try {
    facts = await composeFacts(raw, location, ctx);
  } catch (err) {
    // The compose host is slow or down, or the message points at another compose: one whose message
    // already says it is none of ours (another product, a test compose) is ignored now, rather than
    // retried for an hour or reported failed.
    const byMessage = meaningOf(raw);
    if (!byMessage.ours) return { kind: 'ignore', reason: byMessage.reason };
    if (err instanceof PlumeError && !err.retryable)
      return { kind: 'broken', channel: byMessage.channel, reason: err.oneLine() };
    throw err;
  }
  const meaning = meaningOf(facts);
  if (!meaning.ours) return { kind: 'ignore', reason: meaning.reason };
  const { channel } = meaning;
  if (!watch.channels.includes(channel))
    return { kind: 'ignore', reason: `${facts.id} is a ${channel} compose, a channel not watched` };

  const imagesUrl = childUrl(location, 'metadata/images.json');
  let images: ImagesJson;
  try {
    images = parseImagesJson(await ctx.source.document(imagesUrl), imagesUrl.href);
  } catch (err) {
    // A finished compose of a watched channel without readable metadata is broken, not "try later".
    if (err instanceof PlumeError && !err.retryable)
      return { kind: 'broken', channel, reason: err.oneLine() };
    throw err;
  }
  const plan = planCloudImages(images, {
    channel,
    version: meaning.version,
    imageTypes: meaning.imageTypes,
    arches: watch.arches,
    watchedTypes: watch.imageTypes,
    providers: ctx.providers,
  });
  // Every cloud image is published or said to be skipped, with why: fedimg published them all.
  for (const s of plan.skipped)
    ctx.log.info(
      { compose: facts.id, channel, image: s.path },
      `not publishing ${s.path.split('/').pop() ?? s.path}: ${s.reason}`,
    );
  if (plan.publish.length === 0)
    return plan.missing.length > 0
      ? { kind: 'broken', channel, reason: plan.missing.join('; ') }
      : {
          kind: 'ignore',
          reason: `${facts.id} has ${meaning.imageTypes.join(', ')} images; none of the watched types and arches`,
        };
  for (const m of plan.missing)
    ctx.log.warn({ compose: facts.id, channel }, `compose is missing an image: ${m}`);
  for (const p of plan.publish)
    for (const u of p.unserved)
      ctx.log.info(
        { compose: facts.id, channel, imageType: p.imageType, arch: p.arch, provider: u.provider },
        `not publishing ${p.imageType} ${p.arch} to ${u.provider}: ${u.reason}`,
      );
  const requests: ReleaseRequest[] = plan.publish.map(({ imageType, arch, images: files }) => ({
    system: 'fedora',
    platforms: Object.keys(files),
    channel,
    arch,
    imageType,
    compose: location.href,
    composeId: facts.id,
    version: meaning.version,
    ...(facts.respin !== undefined ? { respin: facts.respin } : {}),
    ...(facts.label ? { label: facts.label } : {}),
    ...(watch.environment ? { environment: watch.environment } : {}),
  }));
  return { kind: 'release', channel, requests };
}
