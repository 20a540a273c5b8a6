import { z } from 'zod';
import type { ComposeFacts } from '../plume/systems/types.js';

/**
 * Pungi's `pungi.compose.status.change` message, in the three shapes seen on the bus: the full flat body,
 * a minimal one (compose_id, location, status only), and the fedmsg-bridged one with the same fields under
 * `msg`. Everything but the three essentials is optional: what is missing is derived from the compose id
 * and the compose's own metadata.
 */
export const COMPOSE_TOPIC = 'pungi.compose.status.change';

export const ComposeStatus = z.enum(['STARTED', 'FINISHED', 'FINISHED_INCOMPLETE', 'DOOMED', 'TERMINATED']);
export type ComposeStatus = z.infer<typeof ComposeStatus>;

const nullableString = z.string().nullish();

/**
 * Pungi's compose id, as productmd writes it: `{release_short}-{version}[-{release_type}]-{date}{suffix}.{respin}`
 * (`Fedora-Cloud-30-20190611.0`, `Fedora-Rawhide-20240501.n.0`, `Fedora-29-updates-20190101.0`). Checked
 * before anything is stored: the id is a database key, a log field, a line in `joystick status` and a page
 * heading, and must never carry anything but its grammar (no spaces, no control characters).
 */
export const COMPOSE_ID = /^[A-Za-z][A-Za-z0-9_+.]*(?:-[A-Za-z0-9_+.]+)*-\d{8}(?:\.(?:n|t|ci|d))?\.\d+$/;

function isWebUrl(location: string): boolean {
  try {
    const url = new URL(location);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

const PungiBody = z.looseObject({
  status: z.string(),
  compose_id: z
    .string()
    .max(256)
    .regex(
      COMPOSE_ID,
      "not a Pungi compose id ({release_short}-{version}[-{type}]-{date}[.n|.t|.ci|.d].{respin}, letters, digits, '.', '_', '+' and '-' only)",
    ),
  location: z
    .string()
    .min(1)
    .max(2048)
    .refine(isWebUrl, 'not an http(s) URL (a compose location is only ever fetched over http or https)'),
  compose_date: nullableString,
  compose_type: nullableString,
  compose_respin: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]).nullish(),
  compose_label: nullableString,
  release_short: nullableString,
  release_name: nullableString,
  release_version: z.union([z.string(), z.number()]).nullish(),
  release_type: nullableString,
  release_is_layered: z.boolean().nullish(),
  compose_path: nullableString,
});

export type PungiParse = { ok: true; compose: ComposeFacts } | { ok: false; reason: string };

/** Whether a topic (with or without prefix) is Pungi's status change. */
export function isComposeTopic(topic: string): boolean {
  return topic === COMPOSE_TOPIC || topic.endsWith(`.${COMPOSE_TOPIC}`);
}

export function parsePungiBody(body: unknown): PungiParse {
  // fedmsg bridged messages carry the payload one level down.
  const candidate =
    typeof body === 'object' && body !== null && 'msg' in body && !('compose_id' in body) ? body.msg : body;
  const parsed = PungiBody.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return {
      ok: false,
      reason: `not a Pungi compose status message: ${issue.path.join('.') || 'body'}: ${issue.message}`,
    };
  }
  const b = parsed.data;
  const str = (v: string | null | undefined) => (v === null || v === undefined || v === '' ? undefined : v);
  return {
    ok: true,
    compose: {
      status: b.status,
      id: b.compose_id,
      location: b.location,
      date: str(b.compose_date),
      type: str(b.compose_type),
      respin:
        b.compose_respin === null || b.compose_respin === undefined ? undefined : Number(b.compose_respin),
      label: str(b.compose_label),
      releaseShort: str(b.release_short),
      releaseVersion:
        b.release_version === null || b.release_version === undefined ? undefined : String(b.release_version),
      releaseType: str(b.release_type),
    },
  };
}

/** Only finished composes (complete or not) are worth publishing; everything else is ignored quietly. */
export function isFinished(status: string): boolean {
  return status === 'FINISHED' || status === 'FINISHED_INCOMPLETE';
}
