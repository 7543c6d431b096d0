"""The workload channel ResourceClaimTemplate of a ComputeDomain (pure), as NVIDIA's controller makes it.

Request `channel` of class `compute-domain-default-channel.nvidia.com`, opaque config
`ComputeDomainChannelConfig{domainID: <cd uid>, allocationMode}` for the `compute-domain.nvidia.com` driver.
The template's own claim metadata carries `resource.nvidia.com/computeDomain: <uid>`, so every claim the
control plane generates from it is labelled too: that label is how the controller finds the claims (and from
them the nodes) of a domain without parsing opaque configs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grove.computedomain import model as m

COMPONENT_CHANNEL_TEMPLATE = "compute-domain-channel"


def channel_config(domain_uid: str, allocation_mode: str = "Single") -> dict[str, Any]:
    """The opaque parameters the node driver reads when it prepares a channel."""
    return {
        "apiVersion": m.API_VERSION,
        "kind": m.CHANNEL_CONFIG_KIND,
        "domainID": domain_uid,
        "allocationMode": allocation_mode,
    }


def channel_template(cd: Mapping[str, Any]) -> dict[str, Any]:
    """The ResourceClaimTemplate for ComputeDomain `cd` (its JSON), owned by the ComputeDomain."""
    parsed = m.ComputeDomain.model_validate({k: v for k, v in cd.items() if k != "status"})
    meta = parsed.metadata
    uid = meta.uid or ""
    channel = parsed.spec.channel
    labels = {
        m.LABEL_COMPUTE_DOMAIN: uid,
        m.LABEL_COMPUTE_DOMAIN_TARGET: m.TARGET_WORKLOAD,
        "app.kubernetes.io/component": COMPONENT_CHANNEL_TEMPLATE,
    }
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {
            "name": channel.resource_claim_template.name,
            "namespace": meta.namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": m.API_VERSION,
                    "kind": m.KIND,
                    "name": meta.name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "metadata": {"labels": {m.LABEL_COMPUTE_DOMAIN: uid}},
            "spec": {
                "devices": {
                    "requests": [{"name": m.CHANNEL_REQUEST, "exactly": {"deviceClassName": m.CHANNEL_DEVICE_CLASS}}],
                    "config": [
                        {
                            "requests": [m.CHANNEL_REQUEST],
                            "opaque": {
                                "driver": m.DRIVER,
                                "parameters": channel_config(uid, channel.allocation_mode),
                            },
                        }
                    ],
                }
            },
        },
    }


def claim_domain(claim: Mapping[str, Any]) -> str | None:
    """The ComputeDomain UID a ResourceClaim belongs to: its label, else a ComputeDomainChannelConfig in its
    spec (claims users write by hand to share one channel between pods, NVIDIA issue #309)."""
    labels = (claim.get("metadata") or {}).get("labels") or {}
    if labels.get(m.LABEL_COMPUTE_DOMAIN):
        return str(labels[m.LABEL_COMPUTE_DOMAIN])
    for cfg in ((claim.get("spec") or {}).get("devices") or {}).get("config") or []:
        opaque = cfg.get("opaque") or {}
        params = opaque.get("parameters") or {}
        if opaque.get("driver") == m.DRIVER and params.get("kind") == m.CHANNEL_CONFIG_KIND and params.get("domainID"):
            return str(params["domainID"])
    return None
