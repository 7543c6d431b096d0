"""CustomResourceDefinitions generated from the pydantic models.

pydantic's JSON Schema is not what the API server accepts: it uses `$ref`, `anyOf: [X, null]` for optional
fields, `title`s, and free-form dicts. `structural()` turns it into a structural OpenAPI v3 schema (inlined,
`type` on every node, a description on every property, defaults, enums, bounds, list types), embeds the real
core/v1 PodSpec and resource.k8s.io/v1 ResourceClaimTemplateSpec (`grove.api.podspec_schema`), and attaches
the CEL rules of `grove.validation.celrules`. `build_crds()` is deterministic: `grove crds` writes it to
api/crds and a test checks the files are current.
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from grove.api.base import EMBED_CLAIM_TEMPLATE_SPEC, EMBED_KEY, EMBED_PODSPEC
from grove.api.constants import DEFAULT_SCHEDULER_NAME, GROUP, SCHEDULER_GROUP, VERSION
from grove.api.podclique import PodCliqueSpec, PodCliqueStatus
from grove.api.podcliqueset import PodCliqueSetSpec, PodCliqueSetStatus
from grove.api.podgang import PodGangSpec, PodGangStatus
from grove.api.podspec_schema import load_claim_template_spec_schema, load_podspec_schema
from grove.api.scalinggroup import PodCliqueScalingGroupSpec, PodCliqueScalingGroupStatus
from grove.api.schedulers import SERVED_SCHEDULER_NAMES
from grove.api.topology import ClusterTopologyBindingSpec, ClusterTopologyBindingStatus
from grove.computedomain.model import ComputeDomainSpec, ComputeDomainStatus
from grove.validation.celrules import rules_for

DROPPED_KEYS = {"title", "$defs", "discriminator"}
API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values."
)
KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this from "
    "the endpoint the client submits requests to. In CamelCase."
)


class SchemaError(ValueError):
    """The models produced a schema the generator cannot make structural."""


def _embedded(kind: str, description: str | None) -> dict[str, Any]:
    if kind == EMBED_PODSPEC:
        schema = load_podspec_schema()
    elif kind == EMBED_CLAIM_TEMPLATE_SPEC:
        schema = load_claim_template_spec_schema()
    else:
        raise SchemaError(f"unknown embedded schema {kind!r}")
    if description:
        schema["description"] = description
    return schema


def structural(node: Mapping[str, Any], defs: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Convert one pydantic JSON-Schema node (and its children) to a structural CRD schema node."""
    if EMBED_KEY in node:
        return _embedded(node[EMBED_KEY], node.get("description"))
    overlay = {k: v for k, v in node.items() if k not in DROPPED_KEYS and k not in {"$ref", "anyOf", "allOf"}}
    base: dict[str, Any] | None = None
    if "$ref" in node:
        base = structural(defs[node["$ref"].rsplit("/", 1)[-1]], defs, where)
    elif "allOf" in node and len(node["allOf"]) == 1:
        base = structural(node["allOf"][0], defs, where)
    elif "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) != 1:
            raise SchemaError(f"{where or '<root>'}: unions are not structural: {node['anyOf']}")
        base = structural(options[0], defs, where)
    if base is not None:
        if overlay.get("default", 0) is None:
            del overlay["default"]
        out = base
        for key, value in overlay.items():
            if key == EMBED_KEY:
                continue
            out[key] = copy.deepcopy(value)
        return out
    out = {}
    for key, value in node.items():
        if key in DROPPED_KEYS:
            continue
        if key == "properties":
            out[key] = {name: structural(prop, defs, f"{where}.{name}") for name, prop in value.items()}
        elif key == "items":
            out[key] = structural(value, defs, f"{where}[]")
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is not False:
                out[key] = structural(value, defs, f"{where}{{}}")
        elif key == "const":
            out["enum"] = [value]
        elif key == "default" and value is None:
            continue
        else:
            out[key] = copy.deepcopy(value)
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


# Bounds added to the embedded PodSpec so CEL rules reading these fields stay within the cost budget; they match
# core/v1 validation (a scheduler name is a DNS-1123 subdomain, at most 253 characters).
# Grove's webhook also requires environment variable names to be C identifiers (core/v1 since 1.34 accepts any
# printable ASCII but '='), in containers and init containers alike.
ENV_NAME = {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}
_POD = "spec.template.cliques[].spec.podSpec"
EMBEDDED_BOUNDS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "PodCliqueSet": {
        "scheduler-name": (
            f"{_POD}.schedulerName",
            {
                "maxLength": 253,
                "description": "The scheduler of the clique's pods; the same for all cliques and immutable. Served: "
                + ", ".join(SERVED_SCHEDULER_NAMES)
                + f" (empty means {DEFAULT_SCHEDULER_NAME}).",
            },
        ),
        "env-name": (f"{_POD}.containers[].env[].name", ENV_NAME),
        "init-env-name": (f"{_POD}.initContainers[].env[].name", ENV_NAME),
    },
}


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of a model (descriptions from fields, else from class docstrings)."""
    raw = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    return structural(raw, raw.get("$defs", {}))


def attach_rules(root: dict[str, Any], kind: str) -> None:
    """Attach the catalog's CEL rules for `kind` to their schema nodes."""
    for rule in rules_for(kind):
        node_at(root, rule.path).setdefault("x-kubernetes-validations", []).append(rule.to_crd())


def node_at(root: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema node at a catalog path (`spec.template.cliques[].spec`)."""
    node = root
    for part in filter(None, path.split(".")):
        is_item = part.endswith("[]")
        name = part[:-2] if is_item else part
        try:
            node = node["properties"][name]
            if is_item:
                node = node["items"]
        except KeyError as error:
            raise SchemaError(f"no schema node at {path!r} (missing {part!r})") from error
    return node


def missing_descriptions(node: Mapping[str, Any], where: str = "") -> list[str]:
    """Properties without a description (every field must explain itself in `kubectl explain`)."""
    missing = []
    for name, prop in node.get("properties", {}).items():
        path = f"{where}.{name}"
        if not prop.get("description") and path != ".metadata":
            missing.append(path)
        missing += missing_descriptions(prop, path)
    if isinstance(node.get("items"), Mapping):
        missing += missing_descriptions(node["items"], f"{where}[]")
    if isinstance(node.get("additionalProperties"), Mapping):
        missing += missing_descriptions(node["additionalProperties"], f"{where}{{}}")
    return missing


@dataclass(frozen=True)
class CRDSpec:
    """What differs between our CRDs."""

    group: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    version: str = VERSION
    categories: tuple[str, ...] = ("grove",)
    scale: dict[str, str] | None = None
    columns: tuple[tuple[str, str, str, str, int], ...] = ()  # name, type, jsonPath, description, priority
    spec_required: bool = True
    scope: str = "Namespaced"

    @property
    def name(self) -> str:
        """metadata.name of the CRD."""
        return f"{self.plural}.{self.group}"

    @property
    def file_name(self) -> str:
        """File name under api/crds (controller-gen's convention)."""
        return f"{self.group}_{self.plural}.yaml"


def _root_schema(spec: CRDSpec) -> dict[str, Any]:
    spec_schema = model_schema(spec.spec_model)
    status_schema = model_schema(spec.status_model)
    spec_schema["description"] = f"Desired state of the {spec.kind}."
    status_schema["description"] = f"Observed state of the {spec.kind}, written by the controller."
    root: dict[str, Any] = {
        "description": spec.description,
        "type": "object",
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {"type": "object"},  # the API server forbids anything else here
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if spec.spec_required:
        root["required"] = ["spec"]
    for path, bounds in EMBEDDED_BOUNDS.get(spec.kind, {}).values():
        node_at(root, path).update(bounds)
    attach_rules(root, spec.kind)
    missing = missing_descriptions(root)
    if missing:
        raise SchemaError(f"{spec.kind}: properties without description: {', '.join(missing[:10])}")
    return root


def build_crd(spec: CRDSpec) -> dict[str, Any]:
    """One CRD as a dict (apiextensions.k8s.io/v1)."""
    subresources: dict[str, Any] = {"status": {}}
    if spec.scale:
        subresources["scale"] = dict(spec.scale)
    columns = [
        {"name": name, "type": kind, "jsonPath": path, "description": text, **({"priority": prio} if prio else {})}
        for name, kind, path, text, prio in spec.columns
    ]
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    version = {
        "name": spec.version,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": _root_schema(spec)},
        "subresources": subresources,
        "additionalPrinterColumns": columns,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": spec.name, "labels": {"app.kubernetes.io/part-of": "grove-py"}},
        "spec": {
            "group": spec.group,
            "names": {
                "kind": spec.kind,
                "listKind": f"{spec.kind}List",
                "plural": spec.plural,
                "singular": spec.singular,
                # NVIDIA's ComputeDomain has neither; empty lists would only differ from its CRD.
                **({"shortNames": list(spec.short_names)} if spec.short_names else {}),
                **({"categories": list(spec.categories)} if spec.categories else {}),
            },
            "scope": spec.scope,
            "versions": [version],
        },
    }


def _update_columns(prefix: str) -> tuple[tuple[str, str, str, str, int], ...]:
    return (
        ("PCLQs-Updated", "integer", f"{prefix}.updatedPodCliquesCount", "Cliques updated", 0),
        ("PCLQs-Total", "integer", f"{prefix}.totalPodCliquesCount", "Cliques in all", 0),
    )


MIN_BREACHED = '.status.conditions[?(@.type=="MinAvailableBreached")].status'

CRD_SPECS: tuple[CRDSpec, ...] = (
    CRDSpec(
        group=GROUP,
        kind="PodCliqueSet",
        plural="podcliquesets",
        singular="podcliqueset",
        short_names=("pcs",),
        spec_model=PodCliqueSetSpec,
        status_model=PodCliqueSetStatus,
        description="A whole inference system (for example a frontend, prefill and decode roles) as one object.",
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.hpaPodSelector",
        },
        columns=(
            ("Replicas", "integer", ".spec.replicas", "Desired replicas", 0),
            ("Available", "integer", ".status.availableReplicas", "Available replicas", 0),
            ("Updated", "integer", ".status.updatedReplicas", "Replicas at the current generation", 0),
            *_update_columns(".status.updateProgress"),
            (
                "PCSGs-Updated",
                "integer",
                ".status.updateProgress.updatedPodCliqueScalingGroupsCount",
                "Scaling groups updated",
                0,
            ),
            (
                "PCSGs-Total",
                "integer",
                ".status.updateProgress.totalPodCliqueScalingGroupsCount",
                "Scaling groups in all",
                0,
            ),
        ),
    ),
    CRDSpec(
        group=GROUP,
        kind="PodClique",
        plural="podcliques",
        singular="podclique",
        short_names=("pclq",),
        spec_model=PodCliqueSpec,
        status_model=PodCliqueStatus,
        description="A group of pods with one role, created by the operator for a PodCliqueSet.",
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.hpaPodSelector",
        },
        columns=(
            ("MinAvail", "integer", ".spec.minAvailable", "Gang minimum", 0),
            ("Replicas", "integer", ".spec.replicas", "Desired pods", 0),
            ("Ready", "integer", ".status.readyReplicas", "Ready pods", 0),
            ("Scheduled", "integer", ".status.scheduledReplicas", "Scheduled pods", 0),
            ("Updated", "integer", ".status.updatedReplicas", "Pods at the current template", 0),
            ("Gated", "integer", ".status.scheduleGatedReplicas", "Pods held by the scheduling gate", 1),
            ("MinBreached", "string", MIN_BREACHED, "Below minAvailable", 1),
        ),
    ),
    CRDSpec(
        group=GROUP,
        kind="PodCliqueScalingGroup",
        plural="podcliquescalinggroups",
        singular="podcliquescalinggroup",
        short_names=("pcsg",),
        spec_model=PodCliqueScalingGroupSpec,
        status_model=PodCliqueScalingGroupStatus,
        description="Cliques of a PodCliqueSet replica that scale together (for example a leader and workers).",
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
        columns=(
            ("MinAvail", "integer", ".spec.minAvailable", "Group replicas in the base gang", 0),
            ("Replicas", "integer", ".spec.replicas", "Desired group replicas", 0),
            ("Available", "integer", ".status.availableReplicas", "Available group replicas", 0),
            ("Scheduled", "integer", ".status.scheduledReplicas", "Scheduled group replicas", 0),
            ("Updated", "integer", ".status.updatedReplicas", "Group replicas at the current generation", 0),
            *_update_columns(".status.updateProgress"),
            ("MinBreached", "string", MIN_BREACHED, "Below minAvailable", 1),
        ),
    ),
    CRDSpec(
        group=SCHEDULER_GROUP,
        kind="PodGang",
        plural="podgangs",
        singular="podgang",
        short_names=("pg",),
        spec_model=PodGangSpec,
        status_model=PodGangStatus,
        description="Pods that must be scheduled together (a gang), one PodGroup per PodClique.",
        columns=(("Phase", "string", ".status.phase", "Phase of the gang", 0),),
    ),
    CRDSpec(
        group=GROUP,
        kind="ClusterTopologyBinding",
        plural="clustertopologybindings",
        singular="clustertopologybinding",
        short_names=("ct",),
        spec_model=ClusterTopologyBindingSpec,
        status_model=ClusterTopologyBindingStatus,
        description="The topology domains of the cluster (zone, rack, host...) and the node label key of each.",
        scope="Cluster",
        columns=(("Domains", "string", ".spec.levels[*].domain", "Topology domains, broadest first", 0),),
    ),
    CRDSpec(
        group="resource.nvidia.com",
        version="v1beta1",
        kind="ComputeDomain",
        plural="computedomains",
        singular="computedomain",
        short_names=(),
        categories=(),
        spec_model=ComputeDomainSpec,
        status_model=ComputeDomainStatus,
        description=(
            "NVIDIA ComputeDomain: an IMEX domain for multi-node NVLink; pods join it through the channel "
            "ResourceClaimTemplate. Same schema as NVIDIA's DRA driver so either controller can serve it."
        ),
        columns=(("Status", "string", ".status.status", "Ready when all nodes are Ready", 0),),
    ),
)


def build_crds() -> dict[str, dict[str, Any]]:
    """All CRDs keyed by file name (deterministic)."""
    return {spec.file_name: build_crd(spec) for spec in CRD_SPECS}
