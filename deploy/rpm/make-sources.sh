#!/usr/bin/env bash
# Make the sources deploy/rpm/plume.spec builds from, into OUTDIR, in the shape of Fedora's
# nodejs-packaging-bundler (an application with its node_modules bundled):
#   plume-VERSION.tar.gz                 the source tree (every file git tracks, as in this checkout)
#   plume-VERSION-nm-prod.tgz            the production node_modules, without any prebuilt binary
#                                        (better-sqlite3's addon is compiled from source in %build)
#   plume-VERSION-nm-dev.tgz             what %build and %check need besides: TypeScript, ajv and type
#                                        declarations, text only (no test runner: see check/vitest.mjs)
#   plume-VERSION-bundled.inc            Provides: bundled(nodejs-NAME) = VERSION for every bundled
#                                        package, bundled(sqlite), and their licenses, %included
#   plume-VERSION-bundled-licenses.txt   each bundled package's license text, shipped as %license
#   joystick.sysusers.conf               also in the tree; %sysusers_create_compat reads it as a source
# Run from a checkout after `npm ci` (scripts/setup.sh); it installs nothing and reads no network.
#   deploy/rpm/make-sources.sh OUTDIR
set -euo pipefail
export LC_ALL=C # one sort order for sort and comm

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out="$(mkdir -p -- "$1" && cd -- "$1" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

version="$(node -p 'require("./package.json").version')"
spec_version="$(sed -n 's/^Version:[[:space:]]*//p' deploy/rpm/plume.spec)"
if [ "$version" != "$spec_version" ]; then
  echo "$0: package.json says $version, deploy/rpm/plume.spec says $spec_version" >&2
  exit 1
fi
if [ ! -e node_modules/.package-lock.json ]; then
  echo "$0: node_modules is missing: run scripts/setup.sh (or npm ci) first" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT
tar_opts=(--owner=0 --group=0 --numeric-owner --sort=name --mtime='2000-01-01 00:00Z')

# Source0: the source tree, from the working tree (so uncommitted edits of tracked files count).
git ls-files -z | tar --create --gzip --file "$out/plume-$version.tar.gz" "${tar_opts[@]}" \
  --transform "s|^|plume-$version/|" --null --files-from=-

# The top-level packages (node_modules/NAME or node_modules/@SCOPE/NAME) of a dependency tree.
tops() {
  { npm ls "$@" --all --parseable 2>/dev/null || true; } |
    sed -n "s|^$root/node_modules/||p" |
    awk -F/ '{ print "node_modules/" (($1 ~ /^@/) ? $1 "/" $2 : $1) }' | sort -u
}
tops --omit=dev >"$work/prod"
if [ ! -s "$work/prod" ]; then
  echo "$0: npm ls --omit=dev lists no production dependency under node_modules/" >&2
  exit 1
fi
# What %build (tsc) and %check (tsc, then node --test) need beyond that, with what those depend on
# (@types/node needs undici-types; ajv, for the schema checks, its own few): pure text.
# shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
node -e '
  const { readFileSync } = require("node:fs");
  const seen = new Set();
  const add = (dir) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(`${dir}/package.json`, "utf8"));
    for (const dep of Object.keys(pkg.dependencies ?? {})) add(`node_modules/${dep}`);
  };
  add("node_modules/typescript");
  // %check validates announcements against their JSON Schemas (test/support/schemas.ts).
  add("node_modules/ajv");
  for (const t of require("node:fs").readdirSync("node_modules/@types")) add(`node_modules/@types/${t}`);
  console.log([...seen].join("\n"));
' | sort | comm -23 - "$work/prod" >"$work/dev"

# No prebuilt binary and no build leftover goes into either tarball; type declarations stay, for tsc
# (%install leaves them out of the package).
excludes=(--exclude='node_modules/.bin' --exclude='*.node' --exclude='better-sqlite3/prebuilds'
  --exclude='better-sqlite3/build' --exclude='*.tsbuildinfo')
tar --create --gzip --file "$out/plume-$version-nm-prod.tgz" "${tar_opts[@]}" "${excludes[@]}" --files-from="$work/prod"
tar --create --gzip --file "$out/plume-$version-nm-dev.tgz" "${tar_opts[@]}" "${excludes[@]}" --files-from="$work/dev"
for t in nm-prod nm-dev; do
  mkdir -p "$work/$t" && tar -xzf "$out/plume-$version-$t.tgz" -C "$work/$t"
  # ELF files (programs, shared objects, addons) and WebAssembly modules are prebuilt binaries.
  python3 - "$work/$t" "plume-$version-$t.tgz" <<'PY'
import os, sys
top, name = sys.argv[1:]
found = []
for d, _, files in os.walk(top):
    for f in files:
        with open(os.path.join(d, f), "rb") as h:
            if h.read(4) in (b"\x7fELF", b"\0asm"):
                found.append(os.path.relpath(os.path.join(d, f), top))
if found:
    sys.exit(f"prebuilt binaries in {name}: {', '.join(sorted(found)[:5])}")
PY
done

# Source3 and Source4: what the production bundle provides, and its licenses.
(cd "$work/nm-prod" && node --input-type=module - "$version" "$out") <<'JS'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [version, out] = process.argv.slice(2);
// every package of the bundle, nested copies included
const packages = [];
function walk(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(dir, entry.name);
    if (entry.name.startsWith('@')) { walk(path); continue; }
    let pkg;
    try { pkg = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')); } catch { continue; }
    if (pkg.name && pkg.version) packages.push({ path, pkg });
    try { walk(join(path, 'node_modules')); } catch { /* no nested node_modules */ }
  }
}
walk('node_modules');
const provides = new Map();
const licenses = new Set();
const texts = [];
for (const { path, pkg } of packages.sort((a, b) => a.path.localeCompare(b.path))) {
  provides.set(`${pkg.name} ${pkg.version}`, `Provides:       bundled(nodejs-${pkg.name}) = ${pkg.version}`);
  const lic = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type;
  if (!lic) throw new Error(`${path}: no license in package.json`);
  licenses.add(lic.replace(/^\((.*)\)$/, '$1'));
  const files = readdirSync(path).filter((f) => /^(licen[cs]e|copying|notice)/i.test(f)).sort();
  texts.push(`== ${pkg.name} ${pkg.version} (${lic}), ${path}\n`);
  for (const f of files) texts.push(readFileSync(join(path, f), 'utf8').trimEnd() + '\n');
  if (files.length === 0) texts.push(`(no license file in the package; package.json says ${lic})\n`);
  texts.push('\n');
}
// better-sqlite3 compiles the SQLite amalgamation it carries: SQLite is bundled too (public domain,
// SPDX "blessing").
const h = readFileSync('node_modules/better-sqlite3/deps/sqlite3/sqlite3.h', 'utf8');
const sqlite = /#define SQLITE_VERSION\s+"([\d.]+)"/.exec(h)?.[1];
if (!sqlite) throw new Error('no SQLITE_VERSION in better-sqlite3/deps/sqlite3/sqlite3.h');
licenses.add('blessing');
const spdx = [...licenses].sort().map((l) => (/ (OR|AND) /.test(l) ? `(${l})` : l)).join(' AND ');
writeFileSync(join(out, `plume-${version}-bundled.inc`), [
  '# Generated by deploy/rpm/make-sources.sh from the bundled node_modules. Do not edit.',
  `%global bundled_licenses ${spdx}`,
  `%global bundled_sqlite_version ${sqlite}`,
  `Provides:       bundled(sqlite) = ${sqlite}`,
  ...[...provides.keys()].sort().map((k) => provides.get(k)),
  '',
].join('\n'));
writeFileSync(join(out, `plume-${version}-bundled-licenses.txt`),
  `The node_modules bundled in plume ${version}, with their licenses (${packages.length} packages)\n` +
  `and SQLite ${sqlite}, which better-sqlite3 compiles in: public domain (SPDX: blessing).\n\n` + texts.join(''));
JS
cp -- deploy/systemd/joystick.sysusers.conf "$out/"
ls -- "$out"
