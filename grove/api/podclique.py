"""PodClique: a group of identical pods with one role (generated from a PodCliqueSet; users may scale it)."""

from typing import Any, Literal

from pydantic import ConfigDict, Field

from grove.api.base import (
    EMBED_KEY,
    EMBED_PODSPEC,
    AutoScalingConfig,
    Condition,
    GroveModel,
    LastError,
    NameRef,
    ObjectMeta,
    list_map,
)
from grove.api.devices import DeviceSpec


def _role_name_required(schema: dict[str, Any]) -> None:
    """Grove's CRD marks roleName required. The model keeps a "" default so the operator still reads objects
    stored before the CRD required it; the generated schema requires the key (no default)."""
    schema.setdefault("required", []).append("roleName")
    schema["properties"]["roleName"].pop("default", None)


class PodCliqueSpec(GroveModel):
    """Pods of one role: template, count, gang minimum and startup dependencies."""

    model_config = ConfigDict(**GroveModel.model_config, json_schema_extra=_role_name_required)

    role_name: str = Field(
        default="",
        max_length=63,
        description="Role of the pods; unique across the cliques of a PodCliqueSet. Immutable.",
    )
    pod_spec: dict[str, Any] = Field(
        description="The core/v1 PodSpec of every pod of the clique.", json_schema_extra={EMBED_KEY: EMBED_PODSPEC}
    )
    replicas: int = Field(
        default=1, ge=0, description="Number of pods (per scaling-group replica for scaling-group members)."
    )
    min_available: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Gang minimum: the pods that must be scheduled together, and the threshold below which the "
            "clique is breached. Defaults to replicas; between 1 and replicas. Immutable."
        ),
    )
    starts_after: list[NameRef] | None = Field(
        default=None,
        max_length=64,
        # atomic, not set: Grove ignores startsAfter unless cliqueStartupType is Explicit, so duplicates are a
        # CEL rule under Explicit rather than a list-type error everywhere.
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
        description=(
            "Cliques whose minAvailable pods must be Ready before this clique's containers start "
            "(cliqueStartupType CliqueStartupTypeExplicit only). Immutable."
        ),
    )
    auto_scaling_config: AutoScalingConfig | None = Field(
        default=None,
        description="Creates an HPA for the clique. Not allowed on cliques that belong to a scaling group.",
    )
    devices: DeviceSpec | None = Field(
        default=None, description="grove-py: GPUs, MIG slices or a ComputeDomain for each pod."
    )

    def effective_min_available(self) -> int:
        """Grove's webhook default: minAvailable falls back to replicas."""
        return self.min_available if self.min_available is not None else max(self.replicas, 1)


class PodsSelectedToUpdate(GroveModel):
    """Ready pods selected for replacement in a rolling update, one at a time (Grove's PodsSelectedToUpdate)."""

    current: str = Field(description="Name of the Ready pod being replaced now.")
    completed: list[str] | None = Field(default=None, description="Pods selected before it in this update.")


class PodCliqueUpdateProgress(GroveModel):
    """Progress of a rolling update of the clique's pods."""

    update_started_at: str = Field(description="When the update started.")
    update_ended_at: str | None = Field(default=None, description="When the update ended.")
    pod_clique_set_generation_hash: str = Field(description="PodCliqueSet generation hash being rolled out.")
    pod_template_hash: str = Field(description="Pod template hash being rolled out.")
    ready_pods_selected_to_update: PodsSelectedToUpdate | None = Field(
        default=None, description="Ready pods picked for replacement: current and completed."
    )


class PodCliqueStatus(GroveModel):
    """Observed state of a PodClique."""

    observed_generation: int | None = Field(default=None, description="Last generation reconciled.")
    last_errors: list[LastError] | None = Field(default=None, description="Errors of the last reconcile.")
    replicas: int = Field(default=0, description="Non-terminating pods.")
    ready_replicas: int = Field(default=0, description="Pods that are Ready.")
    updated_replicas: int = Field(default=0, description="Pods at the current pod template hash.")
    schedule_gated_replicas: int = Field(default=0, description="Pods still held by a scheduling gate.")
    scheduled_replicas: int = Field(default=0, description="Pods bound to a node.")
    hpa_pod_selector: str | None = Field(
        default=None, description="Label selector of the pods, for the /scale subresource (standalone cliques)."
    )
    conditions: list[Condition] | None = Field(
        default=None, description="MinAvailableBreached, PodCliqueScheduled, Ready.", json_schema_extra=list_map("type")
    )
    current_pod_clique_set_generation_hash: str | None = Field(
        default=None, description="PodCliqueSet generation hash the clique was last synced to."
    )
    current_pod_template_hash: str | None = Field(default=None, description="Current pod template hash.")
    update_progress: PodCliqueUpdateProgress | None = Field(default=None, description="Rolling update state.")


class PodClique(GroveModel):
    """A group of pods with one role, created by the operator for a PodCliqueSet."""

    api_version: Literal["grove.io/v1alpha1"] = "grove.io/v1alpha1"
    kind: Literal["PodClique"] = "PodClique"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodCliqueSpec
    status: PodCliqueStatus | None = None
