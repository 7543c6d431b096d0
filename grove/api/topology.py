"""ClusterTopologyBinding (grove.io/v1alpha1, cluster-scoped, short name `ct`): the topology domains of a cluster
(zone, block, rack, host...) and the node-label key that holds each (grove-api.md §1.5).

A `topologyConstraint` names domains; the operator translates them into these label keys for the scheduler
(issue #9). Levels are ordered from the broadest to the narrowest, which is what "a child's domain is equal to
or narrower than its parent's" is checked against."""

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from grove.api.base import Condition, GroveModel, ObjectMeta, list_map

#: A topology domain name, as Grove spells it (region, zone, datacenter, block, rack, host, numa...).
DOMAIN_PATTERN = r"^[a-z][a-z0-9-]*$"
#: A qualified node-label key (optional DNS prefix and a name), as Grove's CRD checks it.
LABEL_KEY_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"


class TopologyLevel(GroveModel):
    """One level of the cluster's topology."""

    domain: str = Field(
        description="Topology domain name, for example zone, rack or host.",
        pattern=DOMAIN_PATTERN,
        min_length=1,
        max_length=63,
    )
    key: str = Field(
        description="Node label key whose value names the node's domain, e.g. topology.kubernetes.io/zone.",
        pattern=LABEL_KEY_PATTERN,
        min_length=1,
        max_length=317,
    )


class SchedulerTopologyBinding(GroveModel):
    """A scheduler backend's own topology object that is managed outside Grove."""

    scheduler_name: str = Field(description="Scheduler backend, for example kai-scheduler.", max_length=253)
    topology_reference: str = Field(description="Name of the backend's topology object.", max_length=253)


class ClusterTopologyBindingSpec(GroveModel):
    """Desired state of a ClusterTopologyBinding."""

    levels: list[TopologyLevel] = Field(
        description="Topology levels from the broadest to the narrowest; domains and keys are unique.",
        min_length=1,
        max_length=16,
        json_schema_extra={
            **list_map("domain"),
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(l, self.exists_one(m, m.key == l.key))",
                    "message": "each level must use a different node label key",
                    "reason": "FieldValueDuplicate",
                }
            ],
        },
    )
    scheduler_topology_bindings: list[SchedulerTopologyBinding] | None = Field(
        default=None,
        description="Backends whose topology object is managed externally (Grove only checks it for drift).",
        max_length=8,
        json_schema_extra=list_map("schedulerName"),
    )


class SchedulerTopologyStatus(GroveModel):
    """Whether one backend's topology object matches the binding."""

    scheduler_name: str = Field(description="Scheduler backend.")
    topology_reference: str = Field(description="Name of the backend's topology object.")
    in_sync: bool = Field(description="The backend's topology matches the levels.")
    scheduler_backend_topology_observed_generation: int | None = Field(
        default=None, description="Generation of the backend's topology object that was compared."
    )
    message: str | None = Field(default=None, description="Details.")


class ClusterTopologyBindingStatus(GroveModel):
    """Observed state of a ClusterTopologyBinding."""

    observed_generation: int | None = Field(default=None, description="Generation last processed.")
    conditions: list[Condition] | None = Field(default=None, description="SchedulerTopologyDrift.")
    scheduler_topology_statuses: list[SchedulerTopologyStatus] | None = Field(
        default=None, description="One entry per backend topology."
    )


class ClusterTopologyBinding(GroveModel):
    """The topology of a cluster, as domains and node-label keys."""

    api_version: Literal["grove.io/v1alpha1"] = "grove.io/v1alpha1"
    kind: Literal["ClusterTopologyBinding"] = "ClusterTopologyBinding"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ClusterTopologyBindingSpec
    status: ClusterTopologyBindingStatus | None = None


def level_keys(binding: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(domain, key) pairs of a binding's JSON, broadest first."""
    levels = (binding.get("spec") or {}).get("levels") or []
    return [(str(level["domain"]), str(level["key"])) for level in levels]
