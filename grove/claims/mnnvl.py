"""Auto-MNNVL (Grove GREP-417, grove-api.md §2.14) and the `devices.computeDomain` short spec.

A clique joins a multi-node NVLink domain when its effective `grove.io/mnnvl-group` annotation names a group
(clique over scaling group over PodCliqueSet; the first level that sets it wins, `none` opts out) and it uses
GPUs, or when its `devices.computeDomain` says so. Per PodCliqueSet replica and group there is one
ComputeDomain `<pcs>-<i>-<group>` whose channel ResourceClaimTemplate has the same name; pods get the claim
`mnnvl-claim` from that template. With the annotation only GPU containers get it (as in Grove); with the
explicit `devices` spec every container does, like the device claim itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grove.api import ObjectMeta, PodCliqueSet, PodCliqueTemplateSpec
from grove.api import constants as c
from grove.claims import naming
from grove.claims.constants import COMPONENT_COMPUTE_DOMAIN, GPU_RESOURCE_NAME, MNNVL_OPT_OUT
from grove.claims.devicespec import has_devices
from grove.claims.sharing import group_of, pcs_name
from grove.computedomain import model as cdmodel

_NUMBER = re.compile(r"^\s*([0-9]*\.?[0-9]*)")


@dataclass(frozen=True)
class DomainRef:
    """The ComputeDomain a clique's pods of one replica join."""

    name: str  # ComputeDomain name = channel ResourceClaimTemplate name
    group: str | None  # None: an existing ComputeDomain named by devices.computeDomain.name (not ours)
    gpu_containers_only: bool  # annotation-driven: only containers that use GPUs get the claim


def _quantity_nonzero(value: Any) -> bool:
    match = _NUMBER.match(str(value))
    text = match.group(1) if match else ""
    try:
        return float(text) != 0 if text not in ("", ".") else False
    except ValueError:
        return False


def container_uses_gpu(container: Mapping[str, Any]) -> bool:
    """Grove's test: a non-zero `nvidia.com/gpu` in limits or requests."""
    resources = container.get("resources") or {}
    return any(
        _quantity_nonzero((resources.get(kind) or {}).get(GPU_RESOURCE_NAME, 0)) for kind in ("limits", "requests")
    )


def clique_uses_gpus(tpl: PodCliqueTemplateSpec) -> bool:
    """GPUs from the device plugin resource in any container, or from `devices`."""
    if has_devices(tpl.spec.devices):
        return True
    pod_spec = tpl.spec.pod_spec
    containers = list(pod_spec.get("containers") or []) + list(pod_spec.get("initContainers") or [])
    return any(container_uses_gpu(ct) for ct in containers)


def annotation_group(pcs: PodCliqueSet, tpl: PodCliqueTemplateSpec) -> str | None:
    """The effective mnnvl group from annotations: clique, then scaling group, then PodCliqueSet."""
    group_cfg = group_of(pcs, tpl.name)
    layers = [tpl.annotations, group_cfg.annotations if group_cfg else None, pcs.metadata.annotations]
    for layer in layers:
        if layer and c.ANNOTATION_MNNVL_GROUP in layer:
            value = layer[c.ANNOTATION_MNNVL_GROUP]
            return None if value == MNNVL_OPT_OUT else value
    return None


def clique_domain(pcs: PodCliqueSet, tpl: PodCliqueTemplateSpec, replica: int) -> DomainRef | None:
    """The ComputeDomain the clique's pods of `replica` join, if any."""
    request = tpl.spec.devices.compute_domain if tpl.spec.devices else None
    if request is not None:
        if request.name:
            return DomainRef(request.name, None, False)
        chosen = request.group or annotation_group(pcs, tpl) or tpl.name
        return DomainRef(naming.compute_domain(pcs_name(pcs), replica, chosen), chosen, False)
    group = annotation_group(pcs, tpl)
    if group is None or not clique_uses_gpus(tpl):
        return None  # Grove skips non-GPU cliques that only inherit the annotation
    return DomainRef(naming.compute_domain(pcs_name(pcs), replica, group), group, not has_devices(tpl.spec.devices))


def groups(pcs: PodCliqueSet) -> list[str]:
    """Distinct groups that need a ComputeDomain per replica, sorted for stable output."""
    found = {ref.group for tpl in pcs.spec.template.cliques if (ref := clique_domain(pcs, tpl, 0)) and ref.group}
    return sorted(found)


def compute_domain_object(pcs: PodCliqueSet, replica: int, group: str) -> dict[str, Any]:
    """The ComputeDomain for one (replica, group), owned by the PodCliqueSet, as Grove builds it.

    numNodes 0 keeps it elastic (Ready as soon as one node joined). Grove also puts a finalizer on it that
    only the PCS controller removes; grove-py relies on the owner reference instead, so a PodCliqueSet
    deletion never hangs on a ComputeDomain.
    """
    name = naming.compute_domain(pcs_name(pcs), replica, group)
    cd = cdmodel.ComputeDomain(
        metadata=ObjectMeta(
            name=name,
            namespace=pcs.metadata.namespace,
            labels={
                c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE,
                c.LABEL_PART_OF: pcs_name(pcs),
                c.LABEL_NAME: name,
                c.LABEL_COMPONENT: COMPONENT_COMPUTE_DOMAIN,
                c.LABEL_PCS_REPLICA_INDEX: str(replica),
                c.LABEL_MNNVL_GROUP: group,
            },
        ),
        spec=cdmodel.ComputeDomainSpec(
            num_nodes=0,
            channel=cdmodel.ComputeDomainChannelSpec(
                resource_claim_template=cdmodel.ResourceClaimTemplateRef(name=name)
            ),
        ),
    )
    return cd.to_json()
