"""PodCliqueSet: the one object a user writes; it describes a whole inference system."""

from typing import Any, Literal

from pydantic import Field

from grove.api.base import (
    LIST_SET,
    AutoScalingConfig,
    Condition,
    GroveModel,
    LabelValue,
    LastError,
    NameRef,
    ObjectMeta,
    ResourceClaimTemplateConfig,
    ResourceSharingSpec,
    TopologyConstraint,
    list_map,
)
from grove.api.podclique import PodCliqueSpec

CliqueStartupType = Literal["CliqueStartupTypeAnyOrder", "CliqueStartupTypeInOrder", "CliqueStartupTypeExplicit"]
# Grove: clique and scaling-group names are DNS-1123 subdomains (a CEL rule also refuses '.', see celrules).
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"


class PodCliqueTemplateSpec(GroveModel):
    """A clique (role) of the system: its name, pod metadata and PodClique spec."""

    name: str = Field(max_length=63, pattern=NAME_PATTERN, description="Clique name, unique. Immutable.")
    labels: dict[str, LabelValue] | None = Field(default=None, description="Labels for the PodClique and its pods.")
    annotations: dict[str, str] | None = Field(default=None, description="Annotations for the PodClique and its pods.")
    topology_constraint: TopologyConstraint | None = Field(
        default=None, description="Packing of the clique's pods; no broader than its parents'."
    )
    resource_sharing: list[ResourceSharingSpec] | None = Field(
        default=None,
        max_length=32,
        description="ResourceClaims shared by the clique's pods. Immutable.",
        json_schema_extra=list_map("name"),
    )
    spec: PodCliqueSpec = Field(description="Specification of the PodClique.")


class PodCliqueScalingGroupConfig(GroveModel):
    """A scaling group: cliques that scale together as one unit (for example a leader and its workers)."""

    name: str = Field(max_length=63, pattern=NAME_PATTERN, description="Scaling group name, unique.")
    clique_names: list[NameRef] = Field(
        min_length=1,
        max_length=64,
        json_schema_extra=LIST_SET,
        description="Cliques that belong to the group; each clique belongs to at most one group. Immutable.",
    )
    annotations: dict[str, str] | None = Field(default=None, description="Annotations for the scaling group.")
    replicas: int = Field(default=1, ge=1, description="Number of group replicas (leader+workers units).")
    min_available: int = Field(
        default=1, ge=1, description="Group replicas that form the base gang; at most replicas. Immutable."
    )
    scale_config: AutoScalingConfig | None = Field(default=None, description="Creates an HPA for the group.")
    resource_sharing: list[ResourceSharingSpec] | None = Field(
        default=None,
        max_length=32,
        description="ResourceClaims shared within the group. Immutable.",
        json_schema_extra=list_map("name"),
    )
    topology_constraint: TopologyConstraint | None = Field(default=None, description="Packing of each group replica.")


class HeadlessServiceConfig(GroveModel):
    """Settings of the headless Service created for each PodCliqueSet replica."""

    publish_not_ready_addresses: bool = Field(
        default=True, description="Publish DNS records of pods before they are Ready."
    )


class PodCliqueSetTemplateSpec(GroveModel):
    """The system every replica of the PodCliqueSet runs."""

    cliques: list[PodCliqueTemplateSpec] = Field(
        min_length=1,
        max_length=64,
        description="The cliques (roles) of the system. Cliques cannot be added, removed or renamed later.",
        json_schema_extra=list_map("name"),
    )
    clique_startup_type: CliqueStartupType = Field(
        default="CliqueStartupTypeAnyOrder",
        description=(
            "Startup order of the cliques: AnyOrder, InOrder (the order of cliques) or Explicit (startsAfter). "
            "Immutable."
        ),
    )
    priority_class_name: str | None = Field(default=None, description="PriorityClass of every pod.")
    headless_service_config: HeadlessServiceConfig | None = Field(
        default=None, description="Headless Service settings."
    )
    topology_constraint: TopologyConstraint | None = Field(
        default=None, description="Packing of each PodCliqueSet replica."
    )
    termination_delay: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        max_length=64,
        description="How long a breached gang may stay breached before it is recreated (Go duration, default 4h).",
    )
    resource_claim_templates: list[ResourceClaimTemplateConfig] | None = Field(
        default=None,
        max_length=32,
        description="Named DRA claim templates for resourceSharing. Immutable.",
        json_schema_extra=list_map("name"),
    )
    resource_sharing: list[ResourceSharingSpec] | None = Field(
        default=None,
        max_length=32,
        description="ResourceClaims shared at PodCliqueSet level. Immutable.",
        json_schema_extra=list_map("name"),
    )
    pod_clique_scaling_groups: list[PodCliqueScalingGroupConfig] | None = Field(
        default=None,
        alias="podCliqueScalingGroups",
        max_length=32,
        description="Scaling groups of cliques. Groups cannot be added, removed or renamed later.",
        json_schema_extra=list_map("name"),
    )


class UpdateStrategy(GroveModel):
    """How pods are replaced when the pod templates change."""

    type: Literal["RollingRecreate", "OnDelete"] = Field(
        default="RollingRecreate",
        description="RollingRecreate: one replica at a time, one pod at a time. OnDelete: when users delete pods.",
    )


class PodCliqueSetSpec(GroveModel):
    """Desired state of a PodCliqueSet."""

    replicas: int = Field(default=0, ge=0, description="Number of copies of the whole system.")
    update_strategy: UpdateStrategy | None = Field(default=None, description="Update strategy.")
    template: PodCliqueSetTemplateSpec = Field(description="The system each replica runs.")


class PodCliqueSetUpdateProgress(GroveModel):
    """Progress of a rolling update across the PodCliqueSet."""

    update_started_at: str = Field(description="When the update started.")
    update_ended_at: str | None = Field(default=None, description="When the update ended.")
    updated_pod_cliques_count: int = Field(default=0, description="Standalone PodCliques updated.")
    total_pod_cliques_count: int = Field(default=0, description="Standalone PodCliques in all.")
    updated_pod_clique_scaling_groups_count: int = Field(default=0, description="Scaling groups updated.")
    total_pod_clique_scaling_groups_count: int = Field(default=0, description="Scaling groups in all.")
    currently_updating: list[dict[str, Any]] | None = Field(
        default=None, description="Replicas being updated (RollingRecreate)."
    )


class PodGangStatusEntry(GroveModel):
    """Phase of one PodGang of the PodCliqueSet."""

    name: str = Field(description="PodGang name.")
    phase: Literal["Pending", "Starting", "Running", "Failed", "Succeeded"] = Field(description="Phase.")
    conditions: list[Condition] | None = Field(default=None, description="Conditions of the PodGang.")


class PodCliqueSetStatus(GroveModel):
    """Observed state of a PodCliqueSet."""

    observed_generation: int | None = Field(default=None, description="Last generation reconciled.")
    conditions: list[Condition] | None = Field(
        default=None, description="Ready, SpecValid and others.", json_schema_extra=list_map("type")
    )
    last_errors: list[LastError] | None = Field(default=None, description="Errors of the last reconcile.")
    replicas: int = Field(default=0, description="Replicas that exist.")
    updated_replicas: int = Field(default=0, description="Replicas at the current generation hash.")
    available_replicas: int = Field(
        default=0, description="Replicas whose cliques and scaling groups are not breached."
    )
    hpa_pod_selector: str | None = Field(default=None, description="Label selector of all pods, for /scale.")
    pod_gang_statuses: list[PodGangStatusEntry] | None = Field(default=None, description="PodGang phases.")
    current_generation_hash: str | None = Field(default=None, description="Hash of the pod templates.")
    update_progress: PodCliqueSetUpdateProgress | None = Field(default=None, description="Update progress.")


class PodCliqueSet(GroveModel):
    """A whole inference system (for example a frontend, prefill and decode) as one object."""

    api_version: Literal["grove.io/v1alpha1"] = "grove.io/v1alpha1"
    kind: Literal["PodCliqueSet"] = "PodCliqueSet"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodCliqueSetSpec
    status: PodCliqueSetStatus | None = None
