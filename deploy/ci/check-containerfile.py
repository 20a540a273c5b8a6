#!/usr/bin/python3
"""Static checks of deploy/Containerfile, for machines without a container engine or hadolint:

    check-containerfile.py CONTAINERFILE CONTEXT_DIR

- every stage starts FROM a Fedora or UBI image with an explicit tag (never :latest) and is named;
- one stage installs every dependency and builds (`npm ci`, `npm run build`), one installs the
  production ones (`npm ci --omit=dev`), and the last stage copies from both;
- the last stage installs xz and bzip2, cleans the package cache in the same RUN, and ends as a
  numeric non-root USER;
- HEALTHCHECK probes /healthz; EXPOSE 8080; the ENTRYPOINT is exactly
  `joystick run --config /etc/fedora-messaging/joystick.toml` in exec form;
- no ADD, no `curl | sh`, no sudo, no credentials in ENV or ARG, pipes only under pipefail, and
  every COPY source (outside --from) exists in the build context.
Prints each failed rule; exits 1 if any.
"""

import json
import re
import shlex
import sys
from pathlib import Path

ENTRYPOINT = ["joystick", "run", "--config", "/etc/fedora-messaging/joystick.toml"]
BASES = re.compile(r"^registry\.(fedoraproject\.org/fedora(-minimal)?|access\.redhat\.com/ubi\d+/[\w.-]+)(:[\w.-]+)$")


def instructions(text):
    """(line number, INSTRUCTION, arguments) with continuations joined and comments dropped."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((start, word.upper(), rest.strip()))
        buf = ""
    return out


def main():
    path, context = Path(sys.argv[1]), Path(sys.argv[2])
    ins = instructions(path.read_text())
    problems, stages = [], []
    for n, word, args in ins:
        if word == "FROM":
            parts = args.split()
            image = parts[0]
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append({"image": image, "name": name, "ins": []})
            if not BASES.match(image):
                problems.append(f"line {n}: FROM {image}: not a Fedora or UBI image with an explicit tag")
            if image.endswith(":latest"):
                problems.append(f"line {n}: FROM {image}: pin a tag, not latest")
            if not name:
                problems.append(f"line {n}: FROM {image}: name the stage (AS ...)")
        elif not stages:
            if word != "ARG":
                problems.append(f"line {n}: {word} before the first FROM")
        else:
            stages[-1]["ins"].append((n, word, args))

    if len(stages) < 2:
        problems.append("not a multi-stage build")
    runs = lambda st: " ; ".join(a for _, w, a in st["ins"] if w == "RUN")
    full = [s for s in stages if re.search(r"\bnpm ci\b(?![^;&]*--omit=dev)", runs(s)) and "npm run build" in runs(s)]
    prod = [s for s in stages if re.search(r"\bnpm ci\b[^;&]*--omit=dev", runs(s))]
    if not full:
        problems.append("no stage runs `npm ci` with the dev dependencies and `npm run build`")
    if not prod:
        problems.append("no stage runs `npm ci --omit=dev`")
    final = stages[-1] if stages else {"ins": [], "name": None}
    copies_from = {re.search(r"--from=(\S+)", a).group(1) for _, w, a in final["ins"] if w == "COPY" and "--from=" in a}
    for group, what in ((full, "build"), (prod, "production dependencies")):
        if group and not any(s["name"] in copies_from for s in group):
            problems.append(f"the last stage copies nothing from the {what} stage")

    final_runs = runs(final)
    for pkg in ("xz", "bzip2"):
        if not re.search(rf"(microdnf|dnf) install[^;&]*\b{pkg}\b", final_runs):
            problems.append(f"the last stage does not install {pkg}")
    for n, w, a in final["ins"]:
        if w == "RUN" and re.search(r"\b(micro)?dnf install\b", a) and not re.search(r"\b(micro)?dnf clean all\b", a):
            problems.append(f"line {n}: dnf install without `clean all` in the same RUN")

    users = [a for _, w, a in final["ins"] if w == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        problems.append(f"the last USER must be a numeric non-root id, not {users[-1] if users else 'unset'}")

    health = [a for _, w, a in final["ins"] if w == "HEALTHCHECK"]
    if not health or "/healthz" not in health[-1]:
        problems.append("no HEALTHCHECK probing /healthz")
    if not any(w == "EXPOSE" and "8080" in a.split() for _, w, a in final["ins"]):
        problems.append("EXPOSE 8080 missing")
    entry = [a for _, w, a in final["ins"] if w == "ENTRYPOINT"]
    try:
        got = json.loads(entry[-1]) if entry else None
    except json.JSONDecodeError:
        got = entry[-1]
    if got != ENTRYPOINT:
        problems.append(f"ENTRYPOINT is {got!r}, expected the exec form {ENTRYPOINT!r}")

    for st in stages:
        for n, w, a in st["ins"]:
            if w == "ADD":
                problems.append(f"line {n}: ADD: use COPY (and no remote URLs)")
            if w == "RUN":
                if re.search(r"\b(curl|wget)\b[^;&|]*\|\s*(ba)?sh\b", a):
                    problems.append(f"line {n}: piping a download into a shell")
                if re.search(r"\bsudo\b", a):
                    problems.append(f"line {n}: sudo")
                if re.search(r"(?<!\|)\|(?!\|)", a) and "pipefail" not in a:
                    problems.append(f"line {n}: a pipe without `set -o pipefail`")
            if w in ("ENV", "ARG") and re.search(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY)", a, re.IGNORECASE):
                problems.append(f"line {n}: {w} names a credential")
            if w == "COPY" and "--from=" not in a:
                srcs = shlex.split(a)[:-1]
                for src in (s for s in srcs if not s.startswith("--")):
                    if not (context / src).exists():
                        problems.append(f"line {n}: COPY {src}: not in the build context")

    for p in problems:
        print(f"  FAIL {path}: {p}", file=sys.stderr)
    print(f"  {path}: {len(stages)} stages, {sum(len(s['ins']) for s in stages)} instructions, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
