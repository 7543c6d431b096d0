"""PodCliqueScalingGroup: cliques that scale together (generated; users or an HPA may scale it)."""

from typing import Literal

from pydantic import Field

from grove.api.base import Condition, GroveModel, LastError, ObjectMeta


class PodCliqueScalingGroupSpec(GroveModel):
    """Desired state of a scaling group."""

    replicas: int = Field(default=1, ge=0, description="Number of group replicas.")
    min_available: int = Field(default=1, ge=1, description="Group replicas in the base gang.")
    clique_names: list[str] = Field(
        min_length=1,
        max_length=64,
        description="Clique template names of the members.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class PodCliqueScalingGroupReplicaUpdateProgress(GroveModel):
    """Available group replicas selected for replacement, one at a time (Grove's type of the same name)."""

    current: int = Field(description="Index of the group replica being replaced now.")
    completed: list[int] | None = Field(default=None, description="Group replicas selected before it in this update.")


class PodCliqueScalingGroupUpdateProgress(GroveModel):
    """Progress of a rolling update of the scaling group (whole group replicas at a time)."""

    update_started_at: str = Field(description="When the update started.")
    update_ended_at: str | None = Field(default=None, description="When the update ended.")
    pod_clique_set_generation_hash: str = Field(description="PodCliqueSet generation hash being rolled out.")
    updated_pod_cliques_count: int = Field(default=0, description="Member PodCliques at the new template.")
    total_pod_cliques_count: int = Field(default=0, description="Member PodCliques in all.")
    ready_replica_indices_selected_to_update: PodCliqueScalingGroupReplicaUpdateProgress | None = Field(
        default=None, description="Ready group replicas picked for replacement: current and completed."
    )


class PodCliqueScalingGroupStatus(GroveModel):
    """Observed state of a scaling group."""

    observed_generation: int | None = Field(default=None, description="Last generation reconciled.")
    last_errors: list[LastError] | None = Field(default=None, description="Errors of the last reconcile.")
    replicas: int = Field(default=0, description="Group replicas.")
    scheduled_replicas: int = Field(default=0, description="Group replicas whose cliques are all scheduled.")
    available_replicas: int = Field(default=0, description="Group replicas whose cliques are all available.")
    updated_replicas: int = Field(default=0, description="Group replicas at the current generation hash.")
    selector: str | None = Field(default=None, description="Label selector of the group's pods, for /scale.")
    conditions: list[Condition] | None = Field(default=None, description="MinAvailableBreached, Ready.")
    current_pod_clique_set_generation_hash: str | None = Field(
        default=None, description="PodCliqueSet generation hash the group was last synced to."
    )
    update_progress: PodCliqueScalingGroupUpdateProgress | None = Field(
        default=None, description="Rolling update state."
    )


class PodCliqueScalingGroup(GroveModel):
    """A scaling group of a PodCliqueSet replica."""

    api_version: Literal["grove.io/v1alpha1"] = "grove.io/v1alpha1"
    kind: Literal["PodCliqueScalingGroup"] = "PodCliqueScalingGroup"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodCliqueScalingGroupSpec
    status: PodCliqueScalingGroupStatus | None = None
