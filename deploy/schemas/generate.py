#!/usr/bin/python3
"""Generate deploy/schemas/api-schemas.json: strict JSON schemas (draft 7) of the Kubernetes and
OpenShift kinds joystick's manifests use, built from the API definitions Debian packages:

- Kubernetes (core/v1, apps/v1): the OpenAPI-generated models of python3-kubernetes
  (openapi_types, attribute_map, and the "must not be None" checks of required fields);
- OpenShift (route, build, image v1): the Go types of golang-github-openshift-api-dev (json tags,
  `+optional` markers, and the string constants of enum types).

Every object is closed (additionalProperties: false), so a misspelt or misplaced key fails, as it
does with `oc apply --validate=strict`. Only maintainers run this (CI validates against the file it
writes):

    apt-get install python3-kubernetes golang-github-openshift-api-dev
    /usr/bin/python3 deploy/schemas/generate.py > deploy/schemas/api-schemas.json
"""

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes
import kubernetes.client.models as k8s

OPENSHIFT_API = Path("/usr/share/gocode/src/github.com/openshift/api")

# The kinds to emit: (apiVersion, kind) -> root type.
K8S_KINDS = {
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
}
OPENSHIFT_KINDS = {
    ("route.openshift.io/v1", "Route"): ("route/v1", "Route"),
    ("build.openshift.io/v1", "BuildConfig"): ("build/v1", "BuildConfig"),
    ("image.openshift.io/v1", "ImageStream"): ("image/v1", "ImageStream"),
}

# Quantities are strings or numbers in the API; the Python models type them as plain strings.
QUANTITY = {"type": ["string", "number"]}
QUANTITY_FIELDS = {
    ("V1ResourceRequirements", "limits"): {"type": "object", "additionalProperties": QUANTITY},
    ("V1ResourceRequirements", "requests"): {"type": "object", "additionalProperties": QUANTITY},
    ("V1EmptyDirVolumeSource", "size_limit"): QUANTITY,
}
INT_OR_STRING = {"type": ["string", "integer"]}

definitions = {}


def ref(name):
    return {"$ref": f"#/definitions/{name}"}


# --- Kubernetes, from python3-kubernetes --------------------------------------------------------


def k8s_type(spec, owner, field):
    if (owner, field) in QUANTITY_FIELDS:
        return QUANTITY_FIELDS[(owner, field)]
    if spec.startswith("list["):
        return {"type": "array", "items": k8s_type(spec[5:-1], owner, field)}
    if spec.startswith("dict("):
        inner = spec[5:-1].split(",", 1)[1].strip()
        return {"type": "object", "additionalProperties": k8s_type(inner, owner, field)}
    simple = {
        "str": {"type": "string"},
        "int": {"type": "integer"},
        "float": {"type": "number"},
        "bool": {"type": "boolean"},
        "datetime": {"type": "string"},
        "date": {"type": "string"},
        # IntOrString (ports, maxSurge...) and free-form values
        "object": INT_OR_STRING if field in ("target_port", "port", "max_surge", "max_unavailable") else {},
    }
    if spec in simple:
        return simple[spec]
    k8s_model(spec)
    return ref(f"k8s.{spec}")


def k8s_model(name):
    key = f"k8s.{name}"
    if key in definitions:
        return
    cls = getattr(k8s, name)
    definitions[key] = None  # placeholder against recursion
    props, required = {}, []
    for attr, spec in cls.openapi_types.items():
        json_name = cls.attribute_map[attr]
        props[json_name] = k8s_type(spec, name, attr)
        setter = getattr(cls, attr).fset
        if setter is not None and "must not be `None`" in inspect.getsource(setter):
            required.append(json_name)
    schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = sorted(required)
    definitions[key] = schema


# --- OpenShift, from the Go types ---------------------------------------------------------------

GO_SIMPLE = {
    "string": {"type": "string"},
    "bool": {"type": "boolean"},
    "int": {"type": "integer"},
    "int32": {"type": "integer"},
    "int64": {"type": "integer"},
    "float64": {"type": "number"},
    "[]byte": {"type": "string"},
    "metav1.Time": {"type": "string"},
    "metav1.MicroTime": {"type": "string"},
    "metav1.Duration": {"type": "string"},
    "intstr.IntOrString": INT_OR_STRING,
    "runtime.RawExtension": {},
    "corev1.ResourceList": {"type": "object", "additionalProperties": QUANTITY},
}
# Go's metav1 types under their python3-kubernetes names.
METAV1 = {"ObjectMeta": "V1ObjectMeta", "ListMeta": "V1ListMeta", "LabelSelector": "V1LabelSelector"}

FIELD = re.compile(r'^\s*(?:(\w+)\s+)?([\w.*\[\]]+)\s+`json:"([^"]*)"')


class GoPackage:
    def __init__(self, path):
        self.path = path
        self.structs = {}  # name -> [(go name, type, json tag, comment)]
        self.aliases = {}  # name -> underlying type
        self.enums = {}  # alias name -> [values]
        text = (OPENSHIFT_API / path / "types.go").read_text()
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            m = re.match(r"^type (\w+) struct \{", line)
            if m:
                fields, comment = [], []
                i += 1
                while not lines[i].startswith("}"):
                    stripped = lines[i].strip()
                    if stripped.startswith("//"):
                        comment.append(stripped)
                    else:
                        f = FIELD.match(lines[i])
                        if f:
                            fields.append((f.group(1), f.group(2), f.group(3), " ".join(comment)))
                        comment = []
                    i += 1
                self.structs[m.group(1)] = fields
            m = re.match(r"^type (\w+) ([\w.\[\]]+)\s*$", line)
            if m:
                self.aliases[m.group(1)] = m.group(2)
            m = re.match(r'^\s+\w+\s+(\w+)\s*=\s*"([^"]*)"', line)
            if m:
                self.enums.setdefault(m.group(1), []).append(m.group(2))
            i += 1

    def type_schema(self, go):
        go = go.lstrip("*")
        if go.startswith("[]") and go != "[]byte":
            return {"type": "array", "items": self.type_schema(go[2:])}
        if go.startswith("map[string]"):
            return {"type": "object", "additionalProperties": self.type_schema(go[len("map[string]") :])}
        if go in GO_SIMPLE:
            return GO_SIMPLE[go]
        if go.startswith("metav1."):
            name = METAV1[go.split(".", 1)[1]]
            k8s_model(name)
            return ref(f"k8s.{name}")
        if go.startswith("corev1."):
            name = "V1" + go.split(".", 1)[1]
            if hasattr(k8s, name):
                k8s_model(name)
                return ref(f"k8s.{name}")
            return {"type": "string"}  # corev1's string types (PullPolicy, ResourceName...)
        if go in self.structs:
            self.struct(go)
            return ref(f"openshift.{self.path.replace('/', '.')}.{go}")
        if go in self.aliases:
            schema = dict(self.type_schema(self.aliases[go]))
            if go in self.enums and schema.get("type") == "string":
                schema["enum"] = sorted(set(self.enums[go]))
            return schema
        raise SystemExit(f"generate.py: unknown Go type {go} in {self.path}")

    def underlying(self, go):
        while go in self.aliases:
            go = self.aliases[go]
        return go

    def fields(self, name):
        """(json name, schema, required) of a struct's fields, inline members flattened."""
        out = []
        for go_name, go_type, tag, comment in self.structs[name]:
            json_name, *opts = tag.split(",")
            if "inline" in opts:
                if go_type == "metav1.TypeMeta":
                    out += [("apiVersion", {"type": "string"}, False), ("kind", {"type": "string"}, False)]
                else:
                    out += self.fields(go_type)
                continue
            if json_name == "-" or go_name is None and not json_name:
                continue
            optional = (
                "omitempty" in opts
                or "+optional" in comment
                or re.search(r"\boptional\b", comment, re.IGNORECASE) is not None
                or json_name == "status"
                or go_type.startswith("*")
                # nil slices and maps are how Go leaves a list or a map unset
                or self.underlying(go_type).startswith(("[]", "map["))
            )
            out.append((json_name, self.type_schema(go_type), not optional))
        return out

    def struct(self, name):
        key = f"openshift.{self.path.replace('/', '.')}.{name}"
        if key in definitions:
            return
        definitions[key] = None
        props, required = {}, []
        for json_name, schema, req in self.fields(name):
            props[json_name] = schema
            if req:
                required.append(json_name)
        schema = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            schema["required"] = sorted(required)
        definitions[key] = schema


def root(api_version, kind, definition):
    return {
        "allOf": [
            ref(definition),
            {
                "properties": {"apiVersion": {"const": api_version}, "kind": {"const": kind}},
                "required": ["apiVersion", "kind", "metadata"],
            },
        ]
    }


def debian_version(package):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=True)
    return out.stdout


def main():
    kinds = {}
    for (api_version, kind), model in K8S_KINDS.items():
        k8s_model(model)
        kinds[f"{api_version}/{kind}"] = root(api_version, kind, f"k8s.{model}")
    packages = {}
    for (api_version, kind), (path, name) in OPENSHIFT_KINDS.items():
        pkg = packages.setdefault(path, GoPackage(path))
        pkg.struct(name)
        kinds[f"{api_version}/{kind}"] = root(api_version, kind, f"openshift.{path.replace('/', '.')}.{name}")
    doc = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": (
            "Generated by deploy/schemas/generate.py from python3-kubernetes "
            f"{debian_version('python3-kubernetes')} (Kubernetes client {kubernetes.__version__}) and "
            f"golang-github-openshift-api-dev {debian_version('golang-github-openshift-api-dev')}. "
            "Do not edit; regenerate."
        ),
        "kinds": dict(sorted(kinds.items())),
        "definitions": dict(sorted(definitions.items())),
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
