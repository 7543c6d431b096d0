"""PodGang (scheduler.grove.io): the pods that must be scheduled together."""

from typing import Literal

from pydantic import Field

from grove.api.base import Condition, GroveModel, ObjectMeta


class NamespacedName(GroveModel):
    """A reference to a pod."""

    namespace: str = Field(description="Namespace of the pod.")
    name: str = Field(description="Name of the pod.")


class PackConstraint(GroveModel):
    """Node-label keys pods must (required) or should (preferred) share."""

    required: str | None = Field(default=None, description="Node label key all pods must share.")
    preferred: str | None = Field(default=None, description="Node label key pods should share.")


class PodGangTopologyConstraint(GroveModel):
    """Topology constraint of a PodGang or PodGroup, in node-label keys."""

    pack_constraint: PackConstraint | None = Field(default=None, description="Packing constraint.")


class PodGroup(GroveModel):
    """The pods of one PodClique within a gang."""

    name: str = Field(description="PodClique name.")
    pod_references: list[NamespacedName] = Field(description="Pods of the group, sorted by name.")
    min_replicas: int = Field(ge=0, description="Pods that must be scheduled together (minAvailable).")
    topology_constraint: PodGangTopologyConstraint | None = Field(default=None, description="Packing.")


class TopologyConstraintGroupConfig(GroveModel):
    """A constraint shared by several PodGroups (a scaling-group replica)."""

    name: str = Field(description="Name of the group of PodGroups.")
    pod_group_names: list[str] = Field(description="PodGroups in the group.")
    topology_constraint: PodGangTopologyConstraint | None = Field(default=None, description="Packing.")


class PodGangSpec(GroveModel):
    """Desired state of a PodGang."""

    podgroups: list[PodGroup] = Field(alias="podgroups", description="One PodGroup per PodClique in the gang.")
    topology_constraint: PodGangTopologyConstraint | None = Field(default=None, description="Gang packing.")
    topology_constraint_group_configs: list[TopologyConstraintGroupConfig] | None = Field(
        default=None, description="Constraints over groups of PodGroups."
    )
    priority_class_name: str | None = Field(default=None, description="PriorityClass of the gang.")
    reuse_reservation_ref: NamespacedName | None = Field(default=None, description="Unused (as in Grove).")


class PodGangStatus(GroveModel):
    """Observed state of a PodGang."""

    phase: Literal["Pending", "Starting", "Running", "Failed", "Succeeded"] = Field(
        default="Pending", description="Phase of the gang."
    )
    conditions: list[Condition] | None = Field(default=None, description="Initialized, Scheduled, Ready.")
    placement_score: float | None = Field(default=None, description="Quality of the placement (0..1).")


class PodGang(GroveModel):
    """Pods to be scheduled as one gang."""

    api_version: Literal["scheduler.grove.io/v1alpha1"] = "scheduler.grove.io/v1alpha1"
    kind: Literal["PodGang"] = "PodGang"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodGangSpec
    status: PodGangStatus | None = None
