"""NVIDIA's ComputeDomain (resource.nvidia.com/v1beta1), for multi-node NVLink (IMEX) channels.

The operator creates one per PodCliqueSet replica for auto-MNNVL and for the `devices.computeDomain`
extension. Clusters without NVIDIA's DRA driver get this CRD from `api/crds` so the objects can exist (our
DRA driver serves them); the schema follows NVIDIA's (dra.md §3.12) so both controllers read the same objects.
"""

from typing import Literal

from pydantic import Field

from grove.api.base import GroveModel, ObjectMeta, list_map

COMPUTE_DOMAIN_API_VERSION: Literal["resource.nvidia.com/v1beta1"] = "resource.nvidia.com/v1beta1"


class ComputeDomainResourceClaimTemplate(GroveModel):
    """The ResourceClaimTemplate the ComputeDomain controller creates for workload pods."""

    name: str = Field(
        max_length=253, description="Name of the channel ResourceClaimTemplate, created in the domain's namespace."
    )


class ComputeDomainChannelSpec(GroveModel):
    """How workload pods join the domain."""

    resource_claim_template: ComputeDomainResourceClaimTemplate = Field(
        description="The ResourceClaimTemplate pods reference (spec.resourceClaims[].resourceClaimTemplateName)."
    )
    allocation_mode: Literal["Single", "All"] = Field(
        default="Single", description="Single: one IMEX channel per claim; All: all channels are injected."
    )


class ComputeDomainSpec(GroveModel):
    """Desired state of a ComputeDomain (immutable)."""

    num_nodes: int = Field(
        default=0,
        ge=0,
        description="Deprecated: expected number of nodes; only used for status.status when greater than 0.",
    )
    channel: ComputeDomainChannelSpec = Field(description="The channel pods join the domain through.")


class ComputeDomainNode(GroveModel):
    """One node of the IMEX domain."""

    name: str = Field(description="Node name.")
    ip_address: str = Field(description="IP address of the node's IMEX daemon.")
    clique_id: str = Field(description="NVLink clique the node belongs to.")
    index: int = Field(default=0, ge=0, description="Index of the node in the domain.")
    status: Literal["Ready", "NotReady"] = Field(default="NotReady", description="Readiness of the IMEX daemon.")


class ComputeDomainStatus(GroveModel):
    """Observed state of a ComputeDomain."""

    status: Literal["Ready", "NotReady"] = Field(default="NotReady", description="Ready when all nodes are Ready.")
    nodes: list[ComputeDomainNode] | None = Field(
        default=None, description="Nodes that joined the domain.", json_schema_extra=list_map("name")
    )


class ComputeDomain(GroveModel):
    """An IMEX domain (multi-node NVLink) that pods join through a channel claim."""

    api_version: Literal["resource.nvidia.com/v1beta1"] = COMPUTE_DOMAIN_API_VERSION
    kind: Literal["ComputeDomain"] = "ComputeDomain"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ComputeDomainSpec
    status: ComputeDomainStatus | None = None
