"""Extract core/v1 PodSpec (and resource.k8s.io/v1 ResourceClaimTemplateSpec) from Kubernetes' published
OpenAPI v3 documents and convert them to structural CRD schemas.

Grove's CRDs inline the real PodSpec (controller-gen does it), so the API server validates field names and
types, prunes nothing silently, and `kubectl explain ...podSpec.containers` works. We do the same from the
OpenAPI document committed in the Kubernetes module, and check the result into `grove/api/data/` so CRD
generation needs no Go toolchain. Regenerate with `python -m grove.api.podspec_schema` (or
`grove crds --refresh-podspec`) after a Kubernetes bump.

Conversion to a structural schema (what apiextensions accepts):
- `$ref` and single-element `allOf: [{$ref}]` wrappers are inlined; the wrapper's description wins;
- Quantity and IntOrString become `x-kubernetes-int-or-string: true` (no type, no pattern);
- metav1.Time becomes a date-time string; RawExtension an object preserving unknown fields;
- an embedded ObjectMeta keeps only labels and annotations (what a claim template may carry);
- `x-kubernetes-patch-*`, `x-kubernetes-unions` and `x-kubernetes-group-version-kind` are dropped
  (CRD schemas have no such fields);
- `default` is dropped except a scalar default on a list-map key that is not required: the API server
  requires such keys to be required or defaulted (ContainerPort.protocol: TCP).
"""

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

K8S_OPENAPI_DIR = Path("/root/go/pkg/mod/k8s.io/kubernetes@v1.37.2/api/openapi-spec/v3")
DATA_DIR = Path(__file__).parent / "data"

CORE_DOCUMENT = "api__v1_openapi.json"
RESOURCE_DOCUMENT = "apis__resource.k8s.io__v1_openapi.json"
PODSPEC = "io.k8s.api.core.v1.PodSpec"
CLAIM_TEMPLATE_SPEC = "io.k8s.api.resource.v1.ResourceClaimTemplateSpec"

PODSPEC_FILE = DATA_DIR / "podspec.schema.json"
CLAIM_TEMPLATE_SPEC_FILE = DATA_DIR / "resourceclaimtemplatespec.schema.json"

INT_OR_STRING = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
}
TIME = {"io.k8s.apimachinery.pkg.apis.meta.v1.Time", "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"}
RAW = "io.k8s.apimachinery.pkg.runtime.RawExtension"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

KEPT_KEYS = (
    "type",
    "format",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
)
DROPPED_FORMATS = {"int-or-string"}


class SchemaConverter:
    """Resolves and converts schemas of one OpenAPI v3 document (components/schemas)."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self.schemas = schemas

    def convert_ref(self, name: str, stack: tuple[str, ...] = ()) -> dict[str, Any]:
        """The structural schema of the named component."""
        if name in stack:
            raise ValueError(f"recursive schema {' -> '.join((*stack, name))}: cannot inline")
        source = self.schemas[name]
        description = source.get("description", "")
        if name in INT_OR_STRING:
            return {"description": description, "x-kubernetes-int-or-string": True}
        if name in TIME:
            return {"description": description, "type": "string", "format": "date-time"}
        if name == RAW:
            return {"description": description, "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if name == OBJECT_META:
            string_map = {"type": "object", "additionalProperties": {"type": "string"}}
            meta = source["properties"]
            return {
                "description": description,
                "type": "object",
                "properties": {
                    key: {**string_map, "description": meta[key]["description"]} for key in ("labels", "annotations")
                },
            }
        return self.convert(source, (*stack, name))

    def convert(self, node: Mapping[str, Any], stack: tuple[str, ...] = ()) -> dict[str, Any]:
        """The structural form of one schema node (recursively)."""
        out: dict[str, Any]
        if "$ref" in node:
            out = self.convert_ref(_ref_name(node["$ref"]), stack)
            if node.get("description"):
                out["description"] = node["description"]
            return out
        all_of = node.get("allOf")
        if all_of:
            if len(all_of) != 1 or "$ref" not in all_of[0]:
                raise ValueError(f"unsupported allOf: {all_of}")
            out = self.convert_ref(_ref_name(all_of[0]["$ref"]), stack)
            if node.get("description"):
                out["description"] = node["description"]
            return out
        out = {}
        if "description" in node:
            out["description"] = node["description"]
        for key in KEPT_KEYS:
            if key in node:
                out[key] = node[key]
        if out.get("format") in DROPPED_FORMATS:
            del out["format"]
        if "properties" in node:
            out["properties"] = {name: self.convert(prop, stack) for name, prop in node["properties"].items()}
            out.setdefault("type", "object")
        if node.get("required"):
            out["required"] = list(node["required"])
        if "additionalProperties" in node:
            extra = node["additionalProperties"]
            out["additionalProperties"] = self.convert(extra, stack) if isinstance(extra, Mapping) else extra
        if "items" in node:
            out["items"] = self.convert(node["items"], stack)
            _keep_list_map_key_defaults(node, out, self, stack)
        return out


def _keep_list_map_key_defaults(
    source: Mapping[str, Any], out: dict[str, Any], converter: SchemaConverter, stack: tuple[str, ...]
) -> None:
    """Restore the scalar defaults of list-map keys that are not required (the API server insists)."""
    keys = source.get("x-kubernetes-list-map-keys") or []
    if source.get("x-kubernetes-list-type") != "map" or not keys:
        return
    item_source = source["items"]
    if "$ref" in item_source:
        item_source = converter.schemas[_ref_name(item_source["$ref"])]
    item = out["items"]
    required = set(item.get("required", []))
    for key in keys:
        default = item_source.get("properties", {}).get(key, {}).get("default")
        if key not in required and isinstance(default, str | int | bool) and key in item.get("properties", {}):
            item["properties"][key]["default"] = default


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def load_document(name: str, directory: Path = K8S_OPENAPI_DIR) -> dict[str, Any]:
    """One OpenAPI v3 document of the Kubernetes module."""
    with (directory / name).open() as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def build_podspec_schema(directory: Path = K8S_OPENAPI_DIR) -> dict[str, Any]:
    """core/v1 PodSpec as a structural schema."""
    return SchemaConverter(load_document(CORE_DOCUMENT, directory)["components"]["schemas"]).convert_ref(PODSPEC)


def build_claim_template_spec_schema(directory: Path = K8S_OPENAPI_DIR) -> dict[str, Any]:
    """resource.k8s.io/v1 ResourceClaimTemplateSpec as a structural schema."""
    schemas = load_document(RESOURCE_DOCUMENT, directory)["components"]["schemas"]
    return SchemaConverter(schemas).convert_ref(CLAIM_TEMPLATE_SPEC)


def load_podspec_schema() -> dict[str, Any]:
    """The checked-in PodSpec schema (a fresh copy; callers may attach rules to it)."""
    data: dict[str, Any] = json.loads(PODSPEC_FILE.read_text())
    return data


def load_claim_template_spec_schema() -> dict[str, Any]:
    """The checked-in ResourceClaimTemplateSpec schema (a fresh copy)."""
    data: dict[str, Any] = json.loads(CLAIM_TEMPLATE_SPEC_FILE.read_text())
    return data


def refresh(directory: Path = K8S_OPENAPI_DIR) -> list[Path]:
    """Regenerate the checked-in schemas from the Kubernetes OpenAPI documents."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for path, schema in (
        (PODSPEC_FILE, build_podspec_schema(directory)),
        (CLAIM_TEMPLATE_SPEC_FILE, build_claim_template_spec_schema(directory)),
    ):
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """`python -m grove.api.podspec_schema [--openapi-dir DIR]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--openapi-dir", type=Path, default=K8S_OPENAPI_DIR)
    args = parser.parse_args(argv)
    for path in refresh(args.openapi_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
