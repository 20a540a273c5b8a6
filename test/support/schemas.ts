import { readFileSync } from 'node:fs';
import { Ajv2019 } from 'ajv/dist/2019.js';

/**
 * The JSON Schemas of the messages joystick announces in fedimg's and fedora-image-uploader's names
 * (test/fixtures/schemas, written from the real producers; see test/fixtures/README.md), and a check of a
 * message against the one its topic calls for.
 */

const SCHEMAS = new URL('../fixtures/schemas/', import.meta.url);
const ajv = new Ajv2019({ allErrors: true, strict: true, allowUnionTypes: true });
const validators = Object.fromEntries(
  [
    'fedimg.image.upload',
    'fedimg.image.copy',
    'fedimg.image.publish',
    'fedora_image_uploader.published.v1.aws',
    'fedora_image_uploader.published.v1.gcp',
    'fedora_image_uploader.published.v1.azure',
    'joystick.image.deprecated',
    'joystick.image.deleted',
  ].map((name) => [
    name,
    ajv.compile(JSON.parse(readFileSync(new URL(`${name}.json`, SCHEMAS), 'utf8')) as object),
  ]),
);

const UPLOADER = 'fedora_image_uploader.published.v1.aws';

/** The schema a topic (with or without its prefix) is checked against; undefined for joystick's own. */
export function schemaFor(topic: string): string | undefined {
  if (topic.includes(`${UPLOADER}.`)) return UPLOADER;
  return Object.keys(validators).find((name) => topic === name || topic.endsWith(`.${name}`));
}

/**
 * What is wrong with a message against the real contract: schema errors, and for fedora-image-uploader's
 * message a topic that does not end in the body's subvariant, release and architecture. Empty when right.
 */
export function contractErrors(topic: string, body: unknown): string[] {
  const name = schemaFor(topic);
  if (!name) return [`no contract for topic ${topic}`];
  const validate = validators[name]!;
  const errors = validate(body)
    ? []
    : (validate.errors ?? []).map((e) => `${topic}: ${e.instancePath || '(body)'} ${e.message ?? ''}`);
  if (name === UPLOADER && errors.length === 0) {
    const b = body as { subvariant: string; release: number; architecture: string };
    const suffix = `.${UPLOADER}.${b.subvariant}.${b.release}.${b.architecture}`;
    if (!`.${topic}`.endsWith(suffix)) errors.push(`${topic}: does not end in ${suffix.slice(1)}`);
  }
  return errors;
}
