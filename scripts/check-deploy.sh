#!/usr/bin/env bash
# Check everything under deploy/ (issue 7) with the tools present on this machine; install nothing.
# Run from anywhere after `npm ci` and `npm run build`. Prints each check; exits 1 if any failed
# (a missing required tool is a failure, named with the Debian package that provides it).
#
# Debian packages: ansible-core ansible-lint yamllint rpm shellcheck python3-yaml python3-jsonschema
# openssl (optional: hadolint if on PATH, systemd for systemd-analyze).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
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
# show LABEL CMD...: run a check and always show its output (its own summary lines)
show() {
  local label="$1"
  shift
  if "$@" 2>&1 | sed 's/^/     /'; then ok "$label"; else fail "$label"; fi
}

step "tools"
declare -A packages=(
  [ansible-playbook]=ansible-core [ansible-lint]=ansible-lint [yamllint]=yamllint [rpmbuild]=rpm
  [rpm]=rpm [shellcheck]=shellcheck [openssl]=openssl [node]=nodejs
)
for tool in ansible-playbook ansible-lint yamllint rpmbuild rpm shellcheck openssl node; do
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
run "shellcheck scripts/check-deploy.sh deploy/ci/render.sh deploy/rpm/make-sources.sh" \
  shellcheck scripts/check-deploy.sh deploy/ci/render.sh deploy/rpm/make-sources.sh

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
    for key, sub in (("template", "templates"), ("file", "files")):
        if key in r:
            used.add(f"{sub}/{r[key]}")
            if not (role / sub / r[key]).is_file():
                sys.exit(f"{sub}/{r[key]} is applied but does not exist")
# amqp-secrets.yml is the stand-in for the openshift/secret-file roles; the toml files are included
have = {f"{p.parent.name}/{p.name}" for p in role.glob("*/*.yml")} - {"templates/amqp-secrets.yml"}
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
run "sources (deploy/rpm/make-sources.sh)" deploy/rpm/make-sources.sh "$work/rpm/SOURCES"
run "rpmbuild -bb" rpmbuild -bb --nodeps --quiet \
  --define "_topdir $work/rpm" --define "_sourcedir $work/rpm/SOURCES" \
  --define "_binary_payload w1.gzdio" --define "nodejs_interpreter $(command -v node)" deploy/rpm/plume.spec
rpmfile="$(find "$work/rpm/RPMS" -name 'plume-*.rpm' -print -quit 2>/dev/null || true)"
if [ -n "$rpmfile" ]; then
  rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpmfile" \
    >"$work/rpm/files" 2>/dev/null
  printf '     %s, %s files, %s\n' "$(basename "$rpmfile")" "$(wc -l <"$work/rpm/files")" "$(du -h "$rpmfile" | cut -f1)"
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
            problems.append(f"{path}: flags {flags!r}, want {want[0]!r} (%config(noreplace))")
        if (perms, owner) != want[1:]:
            problems.append(f"{path}: {perms} {owner}, want {want[1]} {want[2]}")
allowed = (app, "/usr/bin/plume", "/usr/bin/joystick", "/usr/lib/systemd/system/", "/usr/lib/sysusers.d/",
           "/usr/share/doc/plume", "/etc/fedora-messaging", "/etc/plume", "/etc/joystick", "/etc/sysconfig/joystick",
           "/var/lib/joystick")
problems += [f"unexpected {p}" for p in files if not p.startswith(allowed)]
for dev in ("typescript", "vitest", "eslint", "prettier", "tsx", "playwright-core", "@types"):
    if any(p.startswith(f"{app}/node_modules/{dev}/") for p in files):
        problems.append(f"a development dependency is bundled: {dev}")
problems += [f"type declarations bundled: {p}" for p in files if p.endswith(".d.ts")][:3]
print("\n".join(problems))
sys.exit(1 if problems else 0)
PY
  bundled="$(rpm -qp --provides "$rpmfile" 2>/dev/null | grep -c '^bundled(npm(' || true)"
  if [ "$bundled" -gt 50 ]; then ok "$bundled Provides: bundled(npm(...))"; else fail "only $bundled bundled(npm(...)) Provides"; fi
  for req in 'nodejs(engine) >= 20' xz bzip2; do
    if rpm -qp --requires "$rpmfile" 2>/dev/null | grep -qxF "$req"; then ok "Requires: $req"; else fail "no Requires: $req"; fi
  done
  mkdir -p "$work/root"
  run "install into a temporary root (rpm -i --root --nodeps --noscripts)" \
    rpm -i --root "$work/root" --dbpath "$work/root/var/lib/rpm" --nodeps --noscripts --nosignature "$rpmfile"
  version="$(node -p 'require("./package.json").version')"
  if out="$("$work/root/usr/bin/plume" --version 2>&1)" && [ "$out" = "$version" ]; then
    ok "plume --version from the installed tree: $out"
  else
    fail "plume --version from the installed tree printed: $out"
  fi
  if [ -f dist/joystick/cli.js ]; then
    run "joystick --help from the installed tree" "$work/root/usr/bin/joystick" --help
  else
    skip "joystick from the installed tree (joystick's CLI is not built yet)"
  fi
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
