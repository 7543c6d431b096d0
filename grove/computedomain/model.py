"""NVIDIA's ComputeDomain (`resource.nvidia.com/v1beta1`, dra.md §3.12) as pydantic models.

Field names, defaults and enums are NVIDIA's, so ComputeDomains written for NVIDIA's DRA driver validate
here and the objects grove-py creates work with NVIDIA's controller too. The spec is immutable (CEL
`self == oldSelf` in the CRD), which is why the controller never has to reconcile a changed channel.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from grove.api.base import GroveModel, ObjectMeta, list_map

GROUP: Final = "resource.nvidia.com"
VERSION: Final = "v1beta1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ComputeDomain"
PLURAL: Final = "computedomains"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# The node-side driver that publishes IMEX channels and daemons, and its DeviceClasses.
DRIVER: Final = "compute-domain.nvidia.com"
CHANNEL_DEVICE_CLASS: Final = "compute-domain-default-channel.nvidia.com"
DAEMON_DEVICE_CLASS: Final = "compute-domain-daemon.nvidia.com"
CHANNEL_REQUEST: Final = "channel"

# Labels NVIDIA's controller puts on the objects it generates for a ComputeDomain (value: the CD's UID).
LABEL_COMPUTE_DOMAIN: Final = "resource.nvidia.com/computeDomain"
LABEL_COMPUTE_DOMAIN_TARGET: Final = "resource.nvidia.com/computeDomainTarget"
TARGET_WORKLOAD: Final = "Workload"

CHANNEL_CONFIG_KIND: Final = "ComputeDomainChannelConfig"

AllocationMode = Literal["Single", "All"]
Status = Literal["Ready", "NotReady"]


class ResourceClaimTemplateRef(GroveModel):
    """The ResourceClaimTemplate the controller generates for workloads."""

    name: str = Field(description="Name of the ResourceClaimTemplate, created in the ComputeDomain's namespace.")


class ComputeDomainChannelSpec(GroveModel):
    """The channel a workload uses inside the ComputeDomain."""

    resource_claim_template: ResourceClaimTemplateRef = Field(
        description="The ResourceClaimTemplate to generate for workload pods."
    )
    allocation_mode: AllocationMode = Field(
        default="Single",
        description="All: inject every IMEX channel (the maximum per IMEX domain); Single: exactly one.",
    )


class ComputeDomainSpec(GroveModel):
    """Desired state of a ComputeDomain; immutable."""

    num_nodes: int = Field(
        default=0,
        ge=0,
        description=(
            "Intended number of nodes. 0 (recommended): elastic, Ready once one node joined; otherwise Ready "
            "when at least numNodes nodes joined. Deprecated by NVIDIA, kept for compatibility."
        ),
    )
    channel: ComputeDomainChannelSpec = Field(description="The workload channel.")


class ComputeDomainNode(GroveModel):
    """A node that joined the ComputeDomain."""

    name: str = Field(description="Node name.")
    ip_address: str = Field(description="Node IP address (InternalIP).")
    clique_id: str = Field(alias="cliqueID", description="NVLink clique of the node (label nvidia.com/gpu.clique).")
    index: int | None = Field(default=None, description="Stable index of the node within the domain.")
    status: Status = Field(default="NotReady", description="Ready when a workload pod runs on the node.")


class ComputeDomainStatus(GroveModel):
    """Observed state of a ComputeDomain."""

    status: Status = Field(default="NotReady", description="Ready or NotReady.")
    nodes: list[ComputeDomainNode] | None = Field(
        default=None, description="Nodes that joined.", json_schema_extra=list_map("name")
    )


class ComputeDomain(GroveModel):
    """A set of nodes sharing one multi-node NVLink (IMEX) domain."""

    api_version: Literal["resource.nvidia.com/v1beta1"] = "resource.nvidia.com/v1beta1"
    kind: Literal["ComputeDomain"] = "ComputeDomain"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ComputeDomainSpec
    status: ComputeDomainStatus | None = None
