import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  composeFailed,
  imagePruned,
  jobFailed,
  releaseAnnouncements,
  uploadFailed,
  uploadStarted,
  type ImageFacts,
} from '../../src/joystick/messages.js';
import type { OutboxItem } from '../../src/joystick/store/job-store.js';
import type { TargetRecord } from '../../src/plume/record.js';
import { amiName } from '../../src/plume/systems/fedora/images.js';
import { fedimgBuildName, parseLabel, uploaderImageName } from '../../src/plume/systems/fedora/index.js';
import { REPO } from '../support/world.js';

/**
 * docs/contracts.md says which topics joystick sends with which fields, and how images are named: its
 * tables are read here and compared with what the code produces, so the page cannot drift from the code.
 */

const doc = readFileSync(join(REPO, 'docs', 'contracts.md'), 'utf8');

/** The rows of the table whose header row is `header`, as lists of cells. */
function table(header: string): string[][] {
  const lines = doc.split('\n');
  const at = lines.findIndex((l) => l.trim() === header);
  if (at < 0) throw new Error(`docs/contracts.md has no table ${header}`);
  const rows: string[][] = [];
  for (const line of lines.slice(at + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  }
  return rows;
}
const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

const facts: ImageFacts = {
  jobId: 'J',
  composeId: 'Fedora-28-20180425.0',
  imageUrl:
    'https://kojipkgs.fedoraproject.org/compose/28/Fedora-28-20180425.0/compose/Cloud/x86_64/images/Fedora-Cloud-Base-28-1.1.x86_64.raw.xz',
  build: 'Fedora-Cloud-Base-28-1.1.x86_64',
  architecture: 'x86_64',
  ec2Architecture: 'x86_64',
  channel: 'cloud',
  uploader: { imageName: 'Fedora-Cloud-Base-AmazonEC2.x86_64-28-1.1', subvariant: 'Cloud_Base', release: 28 },
  statusUrl: 'http://status.example/status',
};
const image = (location: string, variant: string, id: string) => ({
  location,
  variant,
  id,
  name: amiName(facts.build, location, variant, 0),
});
const complete = {
  provider: 'aws',
  status: 'complete',
  mode: 'release',
  primaryLocation: 'us-east-1',
  images: [image('us-east-1', 'gp3', 'ami-1'), image('eu-west-1', 'gp3', 'ami-2')],
  problems: [],
  plan: { images: [{ location: 'us-east-1', variant: 'gp3' }] },
  finishedAt: '2026-01-01T00:00:00Z',
} as unknown as TargetRecord;
const problem = { location: 'ap-south-1', variant: 'gp3', kind: 'missing', detail: 'copy failed' } as const;

/** Every message the code announces, of every kind. */
const produced: OutboxItem[] = [
  ...releaseAnnouncements(facts, complete, { fedimg: true, uploader: true }),
  ...releaseAnnouncements(
    facts,
    { ...complete, status: 'partial', problems: [problem] },
    { fedimg: true, uploader: true },
  ),
  ...releaseAnnouncements(
    facts,
    { ...complete, status: 'failed', images: [], problems: [problem] },
    { fedimg: true, uploader: true },
  ),
  ...releaseAnnouncements(
    facts,
    {
      ...complete,
      provider: 'gcp',
      primaryLocation: 'global',
      images: [
        {
          location: 'global',
          variant: 'image',
          name: 'fedora-cloud-28-1-1-x86-64',
          id: 'projects/p/global/images/fedora-cloud-28-1-1-x86-64',
        },
      ],
      plan: { images: [], settings: { family: 'fedora-cloud-28', storageLocations: ['us'] } },
    } as unknown as TargetRecord,
    { fedimg: true, uploader: true },
  ),
  ...releaseAnnouncements(
    facts,
    {
      ...complete,
      provider: 'azure',
      primaryLocation: 'eastus',
      images: ['eastus', 'westus2'].map((location) => ({
        location,
        variant: 'version',
        name: '28.20180425.0',
        id: '/CommunityGalleries/Fedora-1/Images/Fedora-Cloud-28-x64/Versions/28.20180425.0',
      })),
      plan: { images: [], settings: { definition: 'Fedora-Cloud-28-x64' } },
    } as unknown as TargetRecord,
    { fedimg: true, uploader: true },
  ),
  ...uploadStarted(facts, 'us-east-1', ['gp3']),
  ...uploadFailed(facts, 'us-east-1', ['gp3'], 1),
  jobFailed(facts, 'no such image', 1),
  composeFailed('Fedora-28-20180425.0', 'https://example.org/compose', 'cloud', 'no images.json'),
  ...(['deprecate', 'delete'] as const).map((kind) =>
    imagePruned({
      kind,
      image: {
        provider: 'aws',
        location: 'us-east-1',
        id: 'ami-1',
        name: 'n',
        release: 'fedora/rawhide/Fedora-Rawhide-20260101.n.0/Cloud-Base/x86_64',
        stream: 'fedora/rawhide/x86_64/Cloud-Base',
      },
      reason: 'built 31 days ago',
      at: '2026-02-01T00:00:00.000Z',
      outcome: { deleted: ['snap-1'], kept: [] },
    }),
  ),
];

/** Top-level fields, and `extra`'s by `extra.name`, as the page lists them. */
function fields(body: Record<string, unknown>): string[] {
  return Object.entries(body).flatMap(([k, v]) =>
    k === 'extra' && v && typeof v === 'object' ? Object.keys(v).map((e) => `extra.${e}`) : [k],
  );
}

describe('docs/contracts.md', () => {
  const rows = table('| topic | when | body fields |');
  const documented = rows.map(([topic, , cell]) => ({
    topic: ticked(topic!)[0]!,
    pattern: new RegExp(
      `^${ticked(topic!)[0]!
        .replace(/\./g, '\\.')
        .replace(/\{[a-z]+\}/g, '[^.]+')}$`,
    ),
    fields: ticked(cell!).sort(),
  }));

  it('lists every topic joystick sends', () => {
    const undocumented = [...new Set(produced.map((m) => m.topic))].filter(
      (t) => !documented.some((d) => d.pattern.test(t)),
    );
    expect(undocumented).toEqual([]);
    expect(documented.map((d) => d.topic)).toContain('fedimg.image.copy');
  });

  it.each(rows.map(([topic]) => ticked(topic!)[0]!))(
    'states the fields of %s as the code sends them',
    (topic) => {
      const d = documented.find((x) => x.topic === topic)!;
      const mine = produced.filter((m) => d.pattern.test(m.topic));
      expect(mine.length, `the code sends no ${topic}`).toBeGreaterThan(0);
      expect([...new Set(mine.flatMap((m) => fields(m.body)))].sort()).toEqual(d.fields);
    },
  );

  it('gives names the code gives', () => {
    const rules = table('| kind | rule | example |');
    const ami = rules.find(([kind]) => kind === 'AMI name')!;
    expect(ticked(ami[2]!)[0]).toBe(amiName('Fedora-Cloud-Base-28-1.1.x86_64', 'us-east-2', 'gp2', 0));
    const examples = table('| image file | version | label | build name | uploader name |');
    expect(examples.length).toBeGreaterThan(3);
    for (const [file, version, label, build, uploader] of examples) {
      const path = `Cloud/x/images/${ticked(file!)[0]!}`;
      const arch = /aarch64/.test(path) ? 'aarch64' : 'x86_64';
      const imageType = /Fedora-AtomicHost/.test(path) ? 'AtomicHost' : 'Cloud-Base';
      expect(fedimgBuildName(path, { version: version!, arch, label: parseLabel(label) }), path).toBe(
        ticked(build!)[0],
      );
      expect(
        uploaderImageName({
          imageType,
          arch,
          version: version!,
          label: parseLabel(label),
          composeId: 'unused',
        }),
        path,
      ).toBe(ticked(uploader!)[0]);
    }
  });

  it('refers to nothing outside the repository, and neither does any other file shipped with it', () => {
    // A relative path must stay inside the repository from the file's own directory; and the contracts this
    // page replaces, once kept beside the repository in ../shared/, are named nowhere but in code's
    // imports of src/shared/. Tests are left out: they hand plume hostile paths on purpose.
    const files = execFileSync('git', ['ls-files'], { cwd: REPO, encoding: 'utf8' })
      .split('\n')
      .filter(
        (f) =>
          f &&
          !f.startsWith('test/') &&
          /(\.(ts|js|mjs|md|toml|ya?ml|json|sh|spec|py|j2)|^\.ci\/run)$/.test(f),
      );
    const escapes: string[] = [];
    for (const file of files) {
      const text = readFileSync(join(REPO, file), 'utf8');
      for (const m of text.matchAll(/(?<![\w.])((?:\.\.\/)+[\w@.-][\w@./-]*)/g)) {
        const target = resolve(REPO, dirname(file), m[1]!);
        const code = /\.(ts|js|mjs)$/.test(file) && target.startsWith(join(REPO, 'src', 'shared'));
        const root = resolve(REPO);
        if (!(target === root || target.startsWith(`${root}/`)) || (/\.\.\/shared\//.test(m[1]!) && !code))
          escapes.push(`${file}: ${m[1]}`);
      }
    }
    expect(escapes).toEqual([]);
  });
});
