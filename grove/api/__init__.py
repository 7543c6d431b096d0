"""The grove.io/v1alpha1 and scheduler.grove.io/v1alpha1 API as pydantic models (Grove's JSON names)."""

from grove.api.base import (
    AutoScalingConfig,
    Condition,
    GroveModel,
    LastError,
    ObjectMeta,
    ResourceClaimTemplateConfig,
    ResourceSharingFilter,
    ResourceSharingSpec,
    TopologyConstraint,
    TopologyPackConstraint,
)
from grove.api.devices import ComputeDomainRequest, DeviceSpec, GPURequest, MIGRequest
from grove.api.podclique import PodClique, PodCliqueSpec, PodCliqueStatus
from grove.api.podcliqueset import (
    HeadlessServiceConfig,
    PodCliqueScalingGroupConfig,
    PodCliqueSet,
    PodCliqueSetSpec,
    PodCliqueSetStatus,
    PodCliqueSetTemplateSpec,
    PodCliqueTemplateSpec,
    UpdateStrategy,
)
from grove.api.podgang import NamespacedName, PodGang, PodGangSpec, PodGangStatus, PodGroup
from grove.api.scalinggroup import (
    PodCliqueScalingGroup,
    PodCliqueScalingGroupSpec,
    PodCliqueScalingGroupStatus,
)

__all__ = [
    "AutoScalingConfig",
    "ComputeDomainRequest",
    "Condition",
    "DeviceSpec",
    "GPURequest",
    "GroveModel",
    "HeadlessServiceConfig",
    "LastError",
    "MIGRequest",
    "NamespacedName",
    "ObjectMeta",
    "PodClique",
    "PodCliqueScalingGroup",
    "PodCliqueScalingGroupConfig",
    "PodCliqueScalingGroupSpec",
    "PodCliqueScalingGroupStatus",
    "PodCliqueSet",
    "PodCliqueSetSpec",
    "PodCliqueSetStatus",
    "PodCliqueSetTemplateSpec",
    "PodCliqueSpec",
    "PodCliqueStatus",
    "PodCliqueTemplateSpec",
    "PodGang",
    "PodGangSpec",
    "PodGangStatus",
    "PodGroup",
    "ResourceClaimTemplateConfig",
    "ResourceSharingFilter",
    "ResourceSharingSpec",
    "TopologyConstraint",
    "TopologyPackConstraint",
    "UpdateStrategy",
]
