"""Which claim objects a PodCliqueSet needs: the operator's `claim_objects` / `set_level_objects` seam.

`claim_objects(pcs, i)` lists everything that belongs to PodCliqueSet replica `i`; replica 0 also carries the
set-level objects (one per PodCliqueSet), so an operator that only calls `claim_objects` for every replica
still creates them, and a scale-in that deletes replica objects by the replica-index label never touches
them (they have no replica label). Set-level objects are also available alone from `set_level_objects`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.claims import devicespec, mnnvl, naming, objects, sharing
from grove.claims.objects import ExternalTemplates


def as_pcs(pcs: PodCliqueSet | Mapping[str, Any]) -> PodCliqueSet:
    """Accept the pydantic model or its JSON (as kopf hands it over)."""
    if isinstance(pcs, PodCliqueSet):
        return pcs
    return PodCliqueSet.model_validate({k: v for k, v in pcs.items() if k != "status"})


def _claims(
    pcs: PodCliqueSet, shared: list[sharing.SharedClaim], external: ExternalTemplates | None
) -> list[dict[str, Any]]:
    out = []
    for claim in shared:
        spec = objects.template_spec_for(pcs, claim, external)
        if spec is not None:  # an external template not handed in yet: created on a later reconcile
            out.append(objects.resource_claim(pcs, claim, spec))
    return out


def set_level_objects(
    pcs: PodCliqueSet | Mapping[str, Any], *, external_templates: ExternalTemplates | None = None
) -> list[dict[str, Any]]:
    """Objects that exist once per PodCliqueSet: PCS-level AllReplicas claims, AllReplicas `devices` claims."""
    model = as_pcs(pcs)
    return _claims(model, sharing.set_level_claims(model), external_templates)


def devices_templates(pcs: PodCliqueSet, replica: int) -> list[dict[str, Any]]:
    """PerPod `devices`: one ResourceClaimTemplate `<pcs>-<i>-<clique>-devices` per clique and replica."""
    out = []
    for tpl in pcs.spec.template.cliques:
        devices = tpl.spec.devices
        if devices is None or not devicespec.has_devices(devices) or devices.sharing != "PerPod":
            continue
        name = naming.per_replica_claim(sharing.pcs_name(pcs), replica, naming.devices_template(tpl.name))
        out.append(
            objects.resource_claim_template(
                pcs, name, devicespec.claim_spec(devices), {c.LABEL_PCS_REPLICA_INDEX: str(replica)}
            )
        )
    return out


def compute_domains(pcs: PodCliqueSet, replica: int) -> list[dict[str, Any]]:
    """One ComputeDomain per MNNVL group for this replica."""
    return [objects.owned(pcs, mnnvl.compute_domain_object(pcs, replica, g)) for g in mnnvl.groups(pcs)]


def claim_objects(
    pcs: PodCliqueSet | Mapping[str, Any],
    replica_index: int,
    *,
    group_replicas: Mapping[str, int] | None = None,
    clique_replicas: Mapping[str, int] | None = None,
    external_templates: ExternalTemplates | None = None,
) -> list[dict[str, Any]]:
    """Every claim-related object of PodCliqueSet replica `replica_index` (see the module docstring).

    `group_replicas` / `clique_replicas`: live replica counts by scaling-group / clique name (default: the
    template's). `external_templates`: resourceSharing templates that are not in the PodCliqueSet, keyed by
    (namespace, name) (see `external_template_refs`); claims from missing ones are left out.
    """
    model = as_pcs(pcs)
    out: list[dict[str, Any]] = []
    if replica_index == 0:
        out += set_level_objects(model, external_templates=external_templates)
    out += _claims(
        model, sharing.replica_claims(model, replica_index, group_replicas, clique_replicas), external_templates
    )
    out += devices_templates(model, replica_index)
    out += compute_domains(model, replica_index)
    return out


def external_template_refs(pcs: PodCliqueSet | Mapping[str, Any]) -> list[tuple[str, str]]:
    """(namespace, name) of every ResourceClaimTemplate a resourceSharing entry needs from the API server."""
    model = as_pcs(pcs)
    internal = {t.name for t in model.spec.template.resource_claim_templates or []}
    entries = list(model.spec.template.resource_sharing or [])
    for group in model.spec.template.pod_clique_scaling_groups or []:
        entries += group.resource_sharing or []
    for tpl in model.spec.template.cliques:
        entries += tpl.resource_sharing or []
    refs = {(e.namespace or model.metadata.namespace or "", e.name) for e in entries if e.name not in internal}
    return sorted(refs)
