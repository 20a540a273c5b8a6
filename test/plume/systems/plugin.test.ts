import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/plume/cli.js';
import type { ReleasePlan } from '../../../src/plume/plan.js';
import { builtinSystems } from '../../../src/plume/systems/builtin.js';
import type {
  LocateContext,
  ReleaseRequest,
  SourceFacts,
  System,
  TargetSettings,
} from '../../../src/plume/systems/types.js';
import { sha256File, writeRawImage } from '../../../tools/compose/sample-compose.js';
import { Inspector } from '../../support/inspect.js';
import { REPO, startWorld, type World } from '../../support/world.js';

const REGIONS = ['us-east-1', 'us-west-2'];
let world: World;
let aws: Inspector;

/**
 * A whole system, written here and nowhere else: uncompressed images at `{files}/toy/{version}.img` with a
 * checksum beside them. Registering it is all it takes for plume to release it.
 */
function toySystem(files: string): System {
  interface ToyFacts extends SourceFacts {
    version: string;
    url: string;
    sha256: string;
  }
  return {
    name: 'toy',
    description: 'a system defined in a test',
    channels: () => [{ name: 'nightly', description: 'every night' }],
    arches: () => ['x86_64'],
    imageTypes: () => [],
    sourceHosts: () => [],
    providers: () => ['aws'],
    async locate(request: ReleaseRequest, ctx: LocateContext): Promise<ToyFacts> {
      const url = `${files}/toy/${request.version}.img`;
      const res = await fetch(`${url}.sha256`);
      ctx.log.info({ url }, 'toy image located');
      return { request, version: request.version!, url, sha256: (await res.text()).trim() };
    },
    plan(raw: SourceFacts, targets: TargetSettings[]): ReleasePlan {
      const f = raw as ToyFacts;
      const build = `toy-${f.version}`;
      const key = `toy/nightly/${f.version}`;
      return {
        key,
        system: 'toy',
        channel: 'nightly',
        arch: 'x86_64',
        version: f.version,
        build,
        targets: targets.map((s) => ({
          key,
          provider: s.provider,
          name: s.name,
          architecture: 'x86_64',
          build,
          source: { url: f.url, sha256: f.sha256, compression: 'none' },
          primaryLocation: s.primaryLocation,
          images: s.locations.flatMap((location) =>
            s.variants.map((variant) => ({ location, variant, name: `${build}-${location}-${variant}` })),
          ),
          description: `Toy ${f.version}`,
          tags: { Toy: f.version },
          visibility: s.visibility,
          settings: { ...s.settings, bootMode: 'uefi', rootDeviceName: '/dev/xvda' },
        })),
        skipped: [],
      };
    },
  };
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  aws = new Inspector(world.emulator.endpoint);
});
afterAll(async () => {
  aws?.destroy();
  vi.unstubAllEnvs();
  await world?.close();
});

describe('systems are plugins', () => {
  it('a system defined in a test file alone releases through the unchanged CLI', async () => {
    const image = join(world.dir, 'composes', 'toy', '7.img');
    await writeRawImage(image, { size: 8 * 2 ** 20, dataFraction: 0.25, seed: 5 });
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${image}.sha256`, `${await sha256File(image)}\n`);
    for (const [k, v] of Object.entries(world.env)) vi.stubEnv(k, v);

    const registry = builtinSystems().register(toySystem(world.files.url));
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += chunk.toString();
      return true;
    });
    let code: number;
    try {
      code = await main(
        [
          'node',
          'plume',
          'release',
          '--system',
          'toy',
          '--channel',
          'nightly',
          '--version',
          '7',
          '--volume-types',
          'gp3',
          '--output',
          'json',
          '--config',
          world.configPath,
          '-q',
        ],
        registry,
      );
    } finally {
      write.mockRestore();
    }
    expect(code, out).toBe(0);
    const record = JSON.parse(out);
    expect(record).toMatchObject({ status: 'complete', system: 'toy', key: 'toy/nightly/7' });
    for (const region of REGIONS) {
      const images = await aws.images(region);
      expect(images.map((i) => [i.Name, i.Public, i.BootMode])).toEqual([
        [`toy-7-${region}-gp3`, true, 'uefi'],
      ]);
    }
  });
});

/** Every relative import of the TypeScript files under a folder of src/plume, as `file: imported path`. */
function importsUnder(dir: string): { file: string; target: string }[] {
  const out: { file: string; target: string }[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const path = join(d, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts'))
        for (const m of readFileSync(path, 'utf8').matchAll(/from '(\.[^']+)'/g))
          out.push({ file: relative(REPO, path), target: relative(REPO, join(path, '..', m[1]!)) });
    }
  };
  walk(join(REPO, dir));
  return out;
}

describe('dependencies point one way: systems decide, providers carry out, plan.ts is what they share', () => {
  it('no system imports a provider, and no provider imports a system', () => {
    const crossing = [
      ...importsUnder('src/plume/systems').filter((i) => i.target.startsWith('src/plume/providers')),
      ...importsUnder('src/plume/providers').filter((i) => i.target.startsWith('src/plume/systems')),
    ];
    expect(crossing).toEqual([]);
  });
  it('systems read sources through what they are given, not the fetcher', () => {
    expect(importsUnder('src/plume/systems').filter((i) => i.target === 'src/plume/source/fetch.js')).toEqual(
      [],
    );
  });
  it('plan.ts imports neither systems nor providers', () => {
    const plan = readFileSync(join(REPO, 'src/plume/plan.ts'), 'utf8');
    expect([...plan.matchAll(/from '([^']+)'/g)].map((m) => m[1])).toEqual(['./source/decompress.js']);
  });
});

describe('nothing outside systems/ knows a system by name', () => {
  it('no built-in system name appears in plume or shared code outside src/plume/systems/', () => {
    const names = builtinSystems()
      .all()
      .flatMap((s) => [s.name, ...(s.aliases ?? [])])
      .filter((n) => n.length > 3);
    expect(names).toEqual(expect.arrayContaining(['container-linux', 'coreos', 'fedora']));
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) {
          if (path !== join(REPO, 'src/plume/systems')) walk(path);
        } else if (path.endsWith('.ts')) files.push(path);
      }
    };
    walk(join(REPO, 'src/plume'));
    walk(join(REPO, 'src/shared'));
    const found = files.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, i) =>
          names
            .filter((n) => new RegExp(`\\b${n}\\b`, 'i').test(line))
            .map((n) => `${relative(REPO, file)}:${i + 1}: ${n}`),
        ),
    );
    expect(found).toEqual([]);
  });
});
