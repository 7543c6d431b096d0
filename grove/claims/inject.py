"""Claim references in a pod spec: `spec.resourceClaims` plus every container's `resources.claims`.

Order: Grove's shared claims (PCS, scaling group, clique level), then the clique's `devices` claim
(`grove-devices`, a template per pod or a shared claim), then the ComputeDomain channel (`mnnvl-claim`).
Shared and device claims go to every container and init container, as Grove does; the auto-MNNVL channel
only to containers that use GPUs. Init containers the operator adds itself (names starting `grove-`, e.g.
the startup wait) get none: Grove's own `grove-initc` is added after claims and has none either.

Injection is idempotent: an entry whose name is already present is left as it is, so calling it twice, or
on a spec that already names `mnnvl-claim` itself, does not duplicate anything.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grove.api import PodCliqueSet
from grove.claims import devicespec, mnnvl, naming, sharing
from grove.claims.constants import DEVICES_CLAIM_NAME, MNNVL_CLAIM_NAME
from grove.claims.plan import as_pcs

OPERATOR_CONTAINER_PREFIX = "grove-"


@dataclass(frozen=True)
class PodClaimRef:
    """One `spec.resourceClaims` entry and which containers reference it."""

    name: str
    claim_name: str | None = None
    template_name: str | None = None
    gpu_containers_only: bool = False

    def entry(self) -> dict[str, str]:
        if self.claim_name is not None:
            return {"name": self.name, "resourceClaimName": self.claim_name}
        assert self.template_name is not None
        return {"name": self.name, "resourceClaimTemplateName": self.template_name}


def pod_claim_refs(
    pcs: PodCliqueSet,
    clique: str,
    replica: int,
    group: str | None,
    group_replica: int | None,
    pod_index: int,
) -> list[PodClaimRef]:
    """What a pod of this clique, replica, group replica and index references (pure; see module docstring)."""
    refs = [
        PodClaimRef(naming.pod_claim_name(s.name), claim_name=s.name)
        for s in sharing.pod_claims(pcs, clique, replica, group, group_replica, pod_index)
    ]
    tpl = sharing.clique_template(pcs, clique)
    devices = tpl.spec.devices
    if devices is not None and devicespec.has_devices(devices):
        shared = sharing.devices_pod_claim(pcs, clique, replica)
        if shared is not None:
            refs.append(PodClaimRef(DEVICES_CLAIM_NAME, claim_name=shared.name))
        else:
            name = naming.per_replica_claim(sharing.pcs_name(pcs), replica, naming.devices_template(clique))
            refs.append(PodClaimRef(DEVICES_CLAIM_NAME, template_name=name))
    domain = mnnvl.clique_domain(pcs, tpl, replica)
    if domain is not None:
        refs.append(
            PodClaimRef(MNNVL_CLAIM_NAME, template_name=domain.name, gpu_containers_only=domain.gpu_containers_only)
        )
    return refs


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    init = [
        ct
        for ct in pod_spec.get("initContainers") or []
        if not str(ct.get("name", "")).startswith(OPERATOR_CONTAINER_PREFIX)
    ]
    return list(pod_spec.get("containers") or []) + init


def apply_refs(pod_spec: Mapping[str, Any], refs: list[PodClaimRef]) -> dict[str, Any]:
    """A copy of `pod_spec` with `refs` wired in (pure)."""
    out: dict[str, Any] = copy.deepcopy(dict(pod_spec))
    containers = _containers(out)
    for ref in refs:
        targets = [ct for ct in containers if not ref.gpu_containers_only or mnnvl.container_uses_gpu(ct)]
        if not targets:
            continue  # Grove: no GPU container, no MNNVL claim
        pod_claims = out.setdefault("resourceClaims", [])
        if not any(entry.get("name") == ref.name for entry in pod_claims):
            pod_claims.append(ref.entry())
        for ct in targets:
            claims = ct.setdefault("resources", {}).setdefault("claims", [])
            if not any(entry.get("name") == ref.name for entry in claims):
                claims.append({"name": ref.name})
    return out


def inject_claims(
    pod_spec: Mapping[str, Any],
    pcs: PodCliqueSet | Mapping[str, Any],
    clique_name: str,
    replica_index: int,
    scaling_group_name: str | None,
    scaling_group_index: int | None,
    pod_index: int,
) -> dict[str, Any]:
    """A new pod spec with every claim the pod needs (`scaling_group_name` is the group's template name)."""
    model = as_pcs(pcs)
    refs = pod_claim_refs(model, clique_name, replica_index, scaling_group_name, scaling_group_index, pod_index)
    return apply_refs(pod_spec, refs)
