#!/usr/bin/python3
"""A changed config or secret rolls joystick out, and secrets keep their bytes.

    test-rollout.py BASE_RENDER_DIR WORK_DIR

BASE_RENDER_DIR is deploy/ci/render.sh's output for the shipped values. This renders the standalone
flavour twice more with deploy/ci/render.sh, each time with one kind of input changed, and checks:

1. a config value changed (max_parallel_jobs): the Deployment's pod template changes (its config
   checksum), its secrets checksum does not, and nothing else in it moves;
2. the secrets changed (a real CA, client certificate and key made here with openssl, and another
   AWS key): the pod template changes (its secrets checksum), its config checksum does not;
3. the PEMs survive the standalone Secret template byte for byte (the multi-line PEM is not folded),
   and openssl reads the same certificate and key back from the rendered YAML.

Because `oc apply` of a changed pod template starts a rollout, (1) and (2) are what make a new config
or a rotated key reach the running pod. Needs ansible-core, openssl and python3-yaml.
"""

import copy
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
RENDER = ROOT / "deploy" / "ci" / "render.sh"
CONFIG = "joystick.fedoraproject.org/config-sha256"
SECRETS = "joystick.fedoraproject.org/secrets-sha256"
problems = []


def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        problems.append(what)


def render(out, *args):
    subprocess.run([str(RENDER), str(out), "-l", "render-standalone", *args], check=True)
    return out / "standalone"


def template(render_dir):
    docs = [d for d in yaml.safe_load_all((render_dir / "deployment.yml").read_text()) if d]
    return docs[0]["spec"]["template"]


def without_checksums(t):
    t = copy.deepcopy(t)
    for key in (CONFIG, SECRETS):
        t["metadata"].get("annotations", {}).pop(key, None)
    return t


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], check=True, capture_output=True, input=data).stdout


def main():
    base_dir, work = Path(sys.argv[1]) / "standalone", Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    base = template(base_dir)
    for key in (CONFIG, SECRETS):
        value = base["metadata"].get("annotations", {}).get(key, "")
        check(len(value) == 64, f"the pod template carries {key}")

    print("  a config value changed (joystick_max_parallel_jobs=7):")
    changed = template(render(work / "config", "-e", "joystick_max_parallel_jobs=7"))
    annotations = changed["metadata"]["annotations"]
    check(annotations[CONFIG] != base["metadata"]["annotations"][CONFIG], "the config checksum changed")
    check(annotations[SECRETS] == base["metadata"]["annotations"][SECRETS], "the secrets checksum did not")
    check(without_checksums(changed) == without_checksums(base), "nothing else in the pod template moved")
    config = (work / "config" / "standalone" / "config" / "joystick.toml").read_text()
    check("max_parallel_jobs = 7" in config, "the rendered config has the new value")

    print("  the secrets changed (a real certificate and key, another AWS key):")
    pki = work / "pki"
    pki.mkdir(exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=joystick-test-ca",
            "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=joystick.stg",
            "-keyout", str(pki / "client.key"), "-out", str(pki / "client.csr"))
    openssl("x509", "-req", "-in", str(pki / "client.csr"), "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"),
            "-CAcreateserial", "-days", "2", "-out", str(pki / "client.crt"))
    pems = {
        "joystick_amqp_ca_cert": (pki / "ca.crt").read_text(),
        "joystick_amqp_client_cert": (pki / "client.crt").read_text(),
        "joystick_amqp_client_key": (pki / "client.key").read_text(),
        "fedimg_aws_stg_access_id": "AKIAROTATEDEXAMPLE00",
        "fedimg_aws_stg_secret_key": 'rotated/"secret"+with\\odd:chars #',
    }
    extra = work / "secrets.yml"
    extra.write_text(yaml.safe_dump(pems, default_style="|"))
    extra.chmod(0o600)
    secret_dir = render(work / "secrets", "-e", f"@{extra}")
    changed = template(secret_dir)
    annotations = changed["metadata"]["annotations"]
    check(annotations[SECRETS] != base["metadata"]["annotations"][SECRETS], "the secrets checksum changed")
    check(annotations[CONFIG] == base["metadata"]["annotations"][CONFIG], "the config checksum did not")
    check(without_checksums(changed) == without_checksums(base), "nothing else in the pod template moved")

    print("  the PEMs and the AWS key through the standalone Secret templates:")
    secrets = {}
    for name in ("amqp-secrets.yml", "aws-secret.yml"):
        for doc in yaml.safe_load_all((secret_dir / name).read_text()):
            if doc:
                secrets.update(doc["stringData"])
    for key, var in (("joystick.ca", "joystick_amqp_ca_cert"), ("joystick.crt", "joystick_amqp_client_cert"),
                     ("joystick.key", "joystick_amqp_client_key")):
        got = secrets.get(key, "")
        check(got == pems[var], f"{key}: the same bytes as the PEM file ({len(pems[var].splitlines())} lines)")
    check(secrets.get("secret_access_key") == pems["fedimg_aws_stg_secret_key"],
          "secret_access_key: quotes, backslashes and # survive")
    fingerprint = lambda pem: openssl("x509", "-noout", "-fingerprint", "-sha256", data=pem.encode())
    check(fingerprint(secrets["joystick.crt"]) == fingerprint(pems["joystick_amqp_client_cert"]),
          "openssl reads the same client certificate back")
    pubkey = lambda data, *args: openssl(*args, data=data.encode())
    check(pubkey(secrets["joystick.key"], "pkey", "-pubout") == pubkey(secrets["joystick.crt"], "x509", "-noout", "-pubkey"),
          "the key read back matches the certificate")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
