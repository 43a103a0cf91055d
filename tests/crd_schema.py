"""Validate rendered KEDA objects against the vendored CRD schemas (tests/data/keda-crds)."""

import copy
import glob
import os

import jsonschema
import yaml

CRD_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "keda-crds")


def _strict(schema):
    """Reject unknown fields like the API server's strict field validation does."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema \
                and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


def load_schemas():
    """{(apiVersion, kind): JSON Schema} for every served version of every vendored CRD."""
    schemas = {}
    for path in sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml"))):
        with open(path) as handle:
            crd = yaml.safe_load(handle)
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            schema["properties"]["metadata"] = {
                "type": "object", "required": ["name"],
                "properties": {"name": {"type": "string", "maxLength": 63,
                                        "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                               "namespace": {"type": "string"},
                               "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                               "annotations": {"type": "object",
                                               "additionalProperties": {"type": "string"}}},
                "additionalProperties": False}
            schema.setdefault("required", [])
            schema["required"] = sorted(set(schema["required"]) | {"apiVersion", "kind", "metadata", "spec"})
            schemas[("%s/%s" % (group, version["name"]), kind)] = schema
    return schemas


def validate(obj, schemas):
    """Raise jsonschema.ValidationError unless ``obj`` fits its CRD; KeyError for an unknown kind."""
    schema = schemas[(obj["apiVersion"], obj["kind"])]
    jsonschema.validate(obj, schema, cls=jsonschema.Draft7Validator)


def check_cel_rules(obj):
    """The CRDs' x-kubernetes-validations (CEL) that jsonschema cannot evaluate, written out."""
    spec = obj["spec"]
    if obj["kind"] == "HTTPScaledObject":
        for key in ("scaleTargetRef", "coldStartTimeoutFailoverRef"):
            ref = spec.get(key)
            if ref is not None and ("port" in ref) == ("portName" in ref):
                raise ValueError("%s: must define either the 'portName' or the 'port'" % key)
    if obj["kind"] == "ScaledObject" and "minReplicaCount" in spec:
        if spec["minReplicaCount"] > spec.get("maxReplicaCount", 100):
            raise ValueError("minReplicaCount must be less than or equal to maxReplicaCount")
