#!/usr/bin/python3
"""Validate Kubernetes/OpenShift manifests offline.

    validate-manifests.py [--extract DIR] DIR_OR_FILE...

Each argument is a YAML file or a directory of *.yml files; the documents of one directory (or
file) are checked together:

1. schema: every document (a `kind: List` counts item by item) against the strict schema of its
   apiVersion/kind in deploy/schemas/api-schemas.json (unknown kinds fail);
2. policy: each container of a Deployment has liveness and readiness probes, CPU and memory
   requests and limits, runs as non-root without privilege escalation and drops every capability;
   every Secret holds only placeholders (REPLACE-WITH-...), never a value;
3. references: the ConfigMaps, Secrets and PersistentVolumeClaims a Deployment uses, the Service a
   Route targets, the Service a ServiceMonitor selects and the ports they name exist in the same set,
   and Services select some pod.

With --extract DIR, the *.toml entries of every ConfigMap are written to DIR/<set>/<key> for the
config checks that follow. Needs python3-yaml and python3-jsonschema (Debian's packages).
"""

import argparse
import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "api-schemas.json"
# The prometheus-operator kinds (ServiceMonitor, PrometheusRule), written by hand: see the file.
MONITORING_SCHEMAS = SCHEMAS.parent / "monitoring-schemas.json"
PLACEHOLDER = re.compile(r"^REPLACE-WITH-[A-Z0-9-]+$")


def load_docs(path):
    files = sorted(path.glob("*.yml")) + sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    docs = []
    for f in files:
        with f.open() as fh:
            for doc in yaml.safe_load_all(fh):
                if doc is None:
                    continue
                if doc.get("kind") == "List" and doc.get("apiVersion") == "v1":
                    for n, item in enumerate(doc.get("items") or []):
                        docs.append((f"{f.name}[{n}]", item))
                else:
                    docs.append((f.name, doc))
    return docs


def where(error):
    return "/".join(str(p) for p in error.absolute_path) or "(top)"


def check_schema(schemas, name, doc, problems):
    key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
    if key not in schemas["kinds"]:
        problems.append(f"{name}: no schema for {key} (known: {', '.join(schemas['kinds'])})")
        return
    schema = dict(schemas["kinds"][key], definitions=schemas["definitions"])
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        # allOf/$ref errors nest; report the deepest ones, which name the offending key
        leaves = [e for e in (error.context or [])] or [error]
        for leaf in leaves:
            problems.append(f"{name}: {doc['kind']}/{doc.get('metadata', {}).get('name')}: {where(leaf)}: {leaf.message}")


def check_policy(name, doc, problems):
    kind, meta = doc.get("kind"), doc.get("metadata", {}).get("name")
    if kind == "Secret":
        for section in ("data", "stringData"):
            for key, value in (doc.get(section) or {}).items():
                if not PLACEHOLDER.match(str(value)):
                    problems.append(f"{name}: Secret/{meta}: {section}.{key} is not a REPLACE-WITH-... placeholder")
    if kind != "Deployment":
        return
    pod = doc["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext") or {}
    for c in pod.get("containers", []):
        label = f"{name}: Deployment/{meta}: container {c.get('name')}"
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in c:
                problems.append(f"{label}: no {probe}")
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(part) or {}):
                    problems.append(f"{label}: no resources.{part}.{r}")
        sc = c.get("securityContext") or {}
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{label}: runAsNonRoot is not set")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{label}: allowPrivilegeEscalation must be false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            problems.append(f"{label}: capabilities.drop must include ALL")
        if sc.get("privileged"):
            problems.append(f"{label}: privileged")


def check_references(label, docs, problems):
    have = {}
    for _, d in docs:
        have.setdefault(d.get("kind"), {})[d.get("metadata", {}).get("name")] = d

    def need(kind, obj_name, user):
        if obj_name not in have.get(kind, {}):
            problems.append(f"{label}: {user} uses {kind}/{obj_name}, which is not defined here")

    for dep in have.get("Deployment", {}).values():
        user = f"Deployment/{dep['metadata']['name']}"
        pod = dep["spec"]["template"]["spec"]
        labels = dep["spec"]["template"].get("metadata", {}).get("labels", {})
        for vol in pod.get("volumes", []):
            if "configMap" in vol:
                need("ConfigMap", vol["configMap"]["name"], user)
            if "secret" in vol:
                need("Secret", vol["secret"]["secretName"], user)
            if "persistentVolumeClaim" in vol:
                need("PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"], user)
            for src in (vol.get("projected") or {}).get("sources", []):
                if "configMap" in src:
                    need("ConfigMap", src["configMap"]["name"], user)
                if "secret" in src:
                    need("Secret", src["secret"]["name"], user)
        for c in pod.get("containers", []):
            for env in c.get("env", []):
                sel = (env.get("valueFrom") or {}).get("secretKeyRef")
                if sel:
                    need("Secret", sel["name"], user)
        for svc in have.get("Service", {}).values():
            selector = svc["spec"].get("selector") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                ports = {p.get("name") for c in pod.get("containers", []) for p in c.get("ports", [])}
                for p in svc["spec"].get("ports", []):
                    if isinstance(p.get("targetPort"), str) and p["targetPort"] not in ports:
                        problems.append(f"{label}: Service/{svc['metadata']['name']} targets port {p['targetPort']}, which {user} does not name")
    for svc in have.get("Service", {}).values():
        selector = svc["spec"].get("selector") or {}
        selected = [
            d for d in have.get("Deployment", {}).values()
            if all(d["spec"]["template"].get("metadata", {}).get("labels", {}).get(k) == v for k, v in selector.items())
        ]
        if selector and not selected:
            problems.append(f"{label}: Service/{svc['metadata']['name']} selects no pod defined here")
    for sm in have.get("ServiceMonitor", {}).values():
        labels = (sm["spec"].get("selector") or {}).get("matchLabels") or {}
        selected = [s for s in have.get("Service", {}).values()
                    if all((s["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())]
        if not selected:
            problems.append(f"{label}: ServiceMonitor/{sm['metadata']['name']} selects no Service defined here (by its labels)")
        for ep in sm["spec"].get("endpoints", []):
            if ep.get("port") and not any(ep["port"] in {p.get("name") for p in s["spec"].get("ports", [])} for s in selected):
                problems.append(f"{label}: ServiceMonitor/{sm['metadata']['name']} scrapes port {ep['port']}, which no selected Service names")
    for route in have.get("Route", {}).values():
        target = route["spec"]["to"]["name"]
        need("Service", target, f"Route/{route['metadata']['name']}")
        port = (route["spec"].get("port") or {}).get("targetPort")
        svc = have.get("Service", {}).get(target)
        if svc and isinstance(port, str) and port not in {p.get("name") for p in svc["spec"].get("ports", [])}:
            problems.append(f"{label}: Route/{route['metadata']['name']} targets port {port}, which Service/{target} does not name")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extract", type=Path)
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args()
    schemas = json.loads(SCHEMAS.read_text())
    schemas["kinds"].update(json.loads(MONITORING_SCHEMAS.read_text())["kinds"])
    problems, count = [], 0
    for path in args.paths:
        docs = load_docs(path)
        if not docs:
            problems.append(f"{path}: no documents")
        for name, doc in docs:
            count += 1
            check_schema(schemas, f"{path.name}/{name}" if path.is_dir() else name, doc, problems)
            check_policy(f"{path.name}/{name}", doc, problems)
        check_references(str(path), docs, problems)
        if args.extract:
            for _, doc in docs:
                if doc.get("kind") == "ConfigMap":
                    for key, value in (doc.get("data") or {}).items():
                        if key.endswith(".toml"):
                            out = args.extract / path.name / key
                            out.parent.mkdir(parents=True, exist_ok=True)
                            out.write_text(value + "\n")
    for p in problems:
        print(f"  FAIL {p}", file=sys.stderr)
    print(f"  {count} objects in {len(args.paths)} sets: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
