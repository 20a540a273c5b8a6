#!/usr/bin/env bash
# Render joystick's OpenShift objects and configs for staging, production and standalone from the
# ansible role (deploy/ansible/ci/render.yml) into OUT_ROOT/<env>/.
#   deploy/ci/render.sh OUT_ROOT [ARG...]   render; ARGs go to ansible-playbook (-e NAME=VALUE,
#                                           -l render-standalone...)
#   deploy/ci/render.sh --update            re-render deploy/openshift/ (the standalone flavour)
# Needs ansible-core.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deploy="$(dirname "$here")"
ansible_dir="$deploy/ansible"

update=false
if [ "${1:-}" = "--update" ]; then
  update=true
  shift
  out_root="$(mktemp -d)"
  trap 'rm -rf -- "$out_root"' EXIT
elif [ $# -ge 1 ]; then
  out_root="$1"
  shift
else
  echo "usage: $0 OUT_ROOT [ansible-playbook ARG...] | --update" >&2
  exit 2
fi

mkdir -p -- "$out_root"
(
  cd "$ansible_dir"
  ANSIBLE_ROLES_PATH="$ansible_dir/roles:$ansible_dir/ci/stub-roles" \
    ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
    ansible-playbook -i ci/render-hosts.yml ci/render.yml -e "render_root=$out_root" "$@" >"$out_root/ansible.log" 2>&1 ||
    { cat "$out_root/ansible.log" >&2; exit 1; }
)

if $update; then
  find "$deploy/openshift" -maxdepth 1 -name '*.yml' -delete
  cp -- "$out_root"/standalone/*.yml "$deploy/openshift/"
  echo "deploy/openshift/ re-rendered from deploy/ansible (standalone)"
fi
