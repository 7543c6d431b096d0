"""grove-py extension: accelerators from a short spec (issue #5).

A clique asks for whole GPUs, a MIG slice or a place in a ComputeDomain in a few lines; the operator turns
that into resource.k8s.io/v1 ResourceClaimTemplates for NVIDIA's device classes, so the claims work with
NVIDIA's DRA driver and with ours.
"""

from typing import Literal

from pydantic import Field

from grove.api.base import GroveModel


class GPURequest(GroveModel):
    """Whole GPUs, optionally narrowed by product, memory or compute capability."""

    count: int = Field(default=1, ge=1, le=64, description="Number of whole GPUs per pod (or per share).")
    product_name: str | None = Field(
        default=None,
        max_length=128,
        description='Exact productName attribute, for example "NVIDIA H100 80GB HBM3".',
    )
    min_memory: str | None = Field(
        default=None,
        pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$",
        description=(
            "Minimum GPU memory as a quantity, compared with the device's memory capacity, for example 40Gi. "
            "GPUs report a little less than their marketing size: an H100 80GB has 81559Mi (79.6Gi), so "
            "80Gi excludes it; use 79Gi."
        ),
    )
    min_compute_capability: str | None = Field(
        default=None,
        pattern=r"^[0-9]+\.[0-9]+$",
        description='Minimum CUDA compute capability, for example "9.0".',
    )


class MIGRequest(GroveModel):
    """MIG slices of one profile."""

    profile: str = Field(
        pattern=r"^[0-9]+(c\.[0-9]+)?g\.[0-9]+gb(\+me)?$",
        description="MIG profile, for example 1g.10gb or 3g.40gb.",
    )
    count: int = Field(default=1, ge=1, le=56, description="Number of MIG devices of this profile per pod.")


class ComputeDomainRequest(GroveModel):
    """A channel in a ComputeDomain (multi-node NVLink / IMEX).

    Grove's auto-MNNVL (annotation ``grove.io/mnnvl-group``) and this request produce the same objects: one
    ComputeDomain ``<pcs>-<i>-<group>`` per PodCliqueSet replica and the pod claim ``mnnvl-claim``. This field is
    the explicit form; it wins over the annotation on the same clique.
    """

    name: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description=(
            "Existing ComputeDomain to join; its channel ResourceClaimTemplate must carry the same name (as the "
            "ComputeDomains grove-py and Grove create do). Empty: the operator creates one per PodCliqueSet "
            "replica named <pcs>-<i>-<group>."
        ),
    )
    group: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description=(
            "MNNVL group when name is empty: cliques with the same group share one ComputeDomain per replica. "
            "Default: the clique's inherited grove.io/mnnvl-group annotation, else the clique name."
        ),
    )


class DeviceSpec(GroveModel):
    """Accelerators for each pod of a clique (grove-py extension)."""

    gpu: GPURequest | None = Field(default=None, description="Whole GPUs.")
    mig: MIGRequest | None = Field(default=None, description="MIG slices.")
    compute_domain: ComputeDomainRequest | None = Field(
        default=None, description="A place in a ComputeDomain for multi-node NVLink."
    )
    sharing: Literal["PerPod", "PerReplica", "AllReplicas"] = Field(
        default="PerPod",
        description=(
            "PerPod: every pod gets its own devices (a ResourceClaimTemplate). PerReplica: the pods of one "
            "PodCliqueSet replica share one claim. AllReplicas: all pods of the PodCliqueSet share one claim."
        ),
    )
