"""Common building blocks of the grove.io models: JSON naming, object metadata, conditions."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# Schema markers read by grove.api.crdgen (they become CRD-only keywords; pydantic ignores them).
EMBED_KEY = "x-grove-embed"
EMBED_PODSPEC = "core/v1.PodSpec"
EMBED_CLAIM_TEMPLATE_SPEC = "resource.k8s.io/v1.ResourceClaimTemplateSpec"

#: A reference to a clique or scaling group by name (bounded so CEL rules iterating names stay in budget).
NameRef = Annotated[str, Field(max_length=63)]


#: A Kubernetes label value (metav1 validation: at most 63 characters, alphanumerics, '-', '_' and '.').
LabelValue = Annotated[str, Field(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
#: A topology domain (Grove's TopologyDomain type).
DOMAIN_PATTERN = r"^[a-z][a-z0-9-]*$"


def list_map(*keys: str) -> dict[str, Any]:
    """`x-kubernetes-list-type: map` keyed by `keys`: the API server refuses duplicate keys and merges by key."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
PRESERVE_UNKNOWN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


class GroveModel(BaseModel):
    """Base of every API struct: snake_case in Python, Grove's camelCase on the wire.

    Unknown fields are refused, as the API server refuses them under kubectl's default strict field
    validation, so offline validation and admission agree.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )

    def to_json(self) -> dict[str, Any]:
        """The object as Kubernetes JSON (aliases, no unset optional fields)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectMeta(BaseModel):
    """The subset of metav1.ObjectMeta the operator reads; everything else passes through untouched."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[dict[str, Any]] | None = None
    finalizers: list[str] | None = None
    deletion_timestamp: str | None = None
    creation_timestamp: str | None = None


class Condition(GroveModel):
    """metav1.Condition, as Grove and Kubernetes publish it in status.conditions."""

    type: str = Field(description="Type of the condition, in CamelCase.")
    status: Literal["True", "False", "Unknown"] = Field(description="Status of the condition.")
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation the condition was set for."
    )
    last_transition_time: str | None = Field(
        default=None, description="Last time the condition changed from one status to another (RFC 3339)."
    )
    reason: str = Field(default="", description="Machine-readable reason for the last transition, CamelCase.")
    message: str = Field(default="", description="Human-readable details about the last transition.")


class LastError(GroveModel):
    """An error from the last failed reconcile, as Grove reports it in status.lastErrors."""

    code: str = Field(description="Error code, for example ERR_SYNC_PODCLIQUE.")
    description: str = Field(description="What went wrong.")
    observed_at: str = Field(description="When the error was observed (RFC 3339).")


class TopologyPackConstraint(GroveModel):
    """Topology domains pods must (required) or should (preferred) be packed into."""

    required: str | None = Field(
        default=None,
        description="Topology domain (for example rack or zone) all pods must share.",
        pattern=DOMAIN_PATTERN,
        max_length=63,
    )
    preferred: str | None = Field(
        default=None,
        description="Topology domain the scheduler should try to pack pods into.",
        pattern=DOMAIN_PATTERN,
        max_length=63,
    )


class TopologyConstraint(GroveModel):
    """Topology-aware packing for a PodCliqueSet replica, a scaling group or a clique."""

    topology_name: str | None = Field(
        default=None,
        max_length=253,
        description="Name of the ClusterTopologyBinding; inherited from the nearest parent.",
    )
    pack: TopologyPackConstraint | None = Field(default=None, description="Packing constraint.")
    pack_domain: str | None = Field(
        default=None,
        max_length=63,
        pattern=DOMAIN_PATTERN,
        description="Deprecated: use pack.required. Kept so old manifests still parse.",
    )


class ResourceSharingFilter(GroveModel):
    """Restricts a shared ResourceClaim to some children."""

    child_clique_names: list[NameRef] | None = Field(
        default=None, description="Cliques whose pods get the claim.", max_length=64, json_schema_extra=LIST_SET
    )
    child_scaling_group_names: list[NameRef] | None = Field(
        default=None,
        description="Scaling groups whose pods get the claim.",
        max_length=32,
        json_schema_extra=LIST_SET,
    )


class ResourceSharingSpec(GroveModel):
    """Shares one ResourceClaim, made from a named template, across pods."""

    name: str = Field(
        min_length=1,
        max_length=253,
        description=(
            "Name of a template in spec.template.resourceClaimTemplates, or of an existing "
            "ResourceClaimTemplate in namespace."
        ),
    )
    namespace: str | None = Field(
        default=None,
        max_length=63,
        description="Namespace of an external ResourceClaimTemplate; empty for internal ones.",
    )
    scope: Literal["AllReplicas", "PerReplica"] = Field(
        description="AllReplicas: one claim shared by all replicas of the owner; PerReplica: one claim per replica."
    )
    filter: ResourceSharingFilter | None = Field(
        default=None, description="Limits which children get the claim (PodCliqueSet and scaling-group level)."
    )


class ResourceClaimTemplateConfig(GroveModel):
    """A named DRA ResourceClaimTemplate spec declared at PodCliqueSet level."""

    name: str = Field(
        description="Name that resourceSharing entries refer to.",
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )
    template_spec: dict[str, Any] = Field(
        description="A resource.k8s.io/v1 ResourceClaimTemplateSpec (metadata and spec.devices).",
        json_schema_extra={EMBED_KEY: EMBED_CLAIM_TEMPLATE_SPEC},
    )


class AutoScalingConfig(GroveModel):
    """Horizontal autoscaling (an autoscaling/v2 HPA created by the operator)."""

    min_replicas: int | None = Field(
        default=None, ge=1, description="Lower bound; defaults to replicas. Must be at least minAvailable."
    )
    max_replicas: int = Field(ge=1, description="Upper bound; at least minReplicas and replicas.")
    metrics: list[dict[str, Any]] | None = Field(
        default=None,
        description="autoscaling/v2 MetricSpec list; empty means the HPA default (80% CPU).",
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
