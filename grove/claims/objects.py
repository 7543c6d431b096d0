"""Kubernetes JSON for the claim objects: ResourceClaims, ResourceClaimTemplates, ComputeDomains.

Every object is owned (controller reference) by the PodCliqueSet, so garbage collection removes it with the
PodCliqueSet, and carries Grove's managed-by/part-of/name/component labels plus the replica, scaling-group
and PodClique labels of the level it belongs to: stale ones (after a scale-in) are found by label.
Grove lets PCSG- and clique-level claims be owned by the PCSG or PodClique; grove-py computes all claims
from the PodCliqueSet alone (before those children exist), hence the single owner.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.claims import devicespec
from grove.claims.constants import KIND_RESOURCE_CLAIM, KIND_RESOURCE_CLAIM_TEMPLATE, RESOURCE_API_VERSION
from grove.claims.sharing import SharedClaim, clique_template, pcs_name

# (namespace, name) -> the ResourceClaimTemplate object as read from the API server.
ExternalTemplates = Mapping[tuple[str, str], Mapping[str, Any]]


def owner_reference(pcs: PodCliqueSet) -> dict[str, Any]:
    """Controller reference to the PodCliqueSet (uid empty when rendering an object not yet created)."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND_PODCLIQUESET,
        "name": pcs_name(pcs),
        "uid": pcs.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def labels(pcs: PodCliqueSet, name: str, component: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE,
        c.LABEL_PART_OF: pcs_name(pcs),
        c.LABEL_NAME: name,
        c.LABEL_COMPONENT: component,
        **dict(extra or {}),
    }


def _metadata(
    pcs: PodCliqueSet, name: str, object_labels: dict[str, str], template_meta: Mapping[str, Any]
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if pcs.metadata.namespace:
        meta["namespace"] = pcs.metadata.namespace
    meta["labels"] = {**(template_meta.get("labels") or {}), **object_labels}
    if template_meta.get("annotations"):
        meta["annotations"] = dict(template_meta["annotations"])
    meta["ownerReferences"] = [owner_reference(pcs)]
    return meta


def template_spec_for(
    pcs: PodCliqueSet, claim: SharedClaim, external: ExternalTemplates | None
) -> Mapping[str, Any] | None:
    """The ResourceClaimTemplateSpec (`{metadata?, spec}`) behind a shared claim; None if an external
    template was not supplied (the caller fetches those: see `external_template_refs`)."""
    if claim.source == "devices":
        devices = clique_template(pcs, claim.devices_clique or "").spec.devices
        assert devices is not None
        return {"spec": devicespec.claim_spec(devices)}
    if claim.source == "internal":
        for tpl in pcs.spec.template.resource_claim_templates or []:
            if tpl.name == claim.template:
                return tpl.template_spec
        return None
    key = (claim.template_namespace or pcs.metadata.namespace or "", claim.template)
    found = (external or {}).get(key)
    if found is None:
        return None
    spec: Mapping[str, Any] = found["spec"]  # a ResourceClaimTemplate object: its spec is the template spec
    return spec


def resource_claim(pcs: PodCliqueSet, claim: SharedClaim, template_spec: Mapping[str, Any]) -> dict[str, Any]:
    """A ResourceClaim made from a template spec. Like a template-generated claim it takes the template's
    metadata labels/annotations (ours win) and its spec."""
    meta = _metadata(
        pcs,
        claim.name,
        labels(pcs, claim.name, c.COMPONENT_RESOURCE_CLAIM, claim.labels),
        template_spec.get("metadata") or {},
    )
    return {
        "apiVersion": RESOURCE_API_VERSION,
        "kind": KIND_RESOURCE_CLAIM,
        "metadata": meta,
        "spec": copy.deepcopy(dict(template_spec.get("spec") or {})),
    }


def resource_claim_template(
    pcs: PodCliqueSet, name: str, claim_spec: Mapping[str, Any], extra_labels: Mapping[str, str]
) -> dict[str, Any]:
    """A ResourceClaimTemplate owned by the PodCliqueSet. Claims generated from it carry part-of, so
    `kubectl get resourceclaims -l app.kubernetes.io/part-of=<pcs>` finds them (but not managed-by: the
    claims belong to their pods, not to the operator)."""
    return {
        "apiVersion": RESOURCE_API_VERSION,
        "kind": KIND_RESOURCE_CLAIM_TEMPLATE,
        "metadata": _metadata(pcs, name, labels(pcs, name, c.COMPONENT_RESOURCE_CLAIM_TEMPLATE, extra_labels), {}),
        "spec": {
            "metadata": {"labels": {c.LABEL_PART_OF: pcs_name(pcs)}},
            "spec": copy.deepcopy(dict(claim_spec)),
        },
    }


def owned(pcs: PodCliqueSet, obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with the PodCliqueSet's controller reference added (ComputeDomains are built elsewhere)."""
    meta = obj.setdefault("metadata", {})
    meta["ownerReferences"] = [owner_reference(pcs)]
    if pcs.metadata.namespace and not meta.get("namespace"):
        meta["namespace"] = pcs.metadata.namespace
    return obj
