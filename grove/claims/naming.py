"""Object names of shared claims, exactly as Grove builds them (grove-api.md §2.13, §2.14).

Owner names are Grove's FQNs: the PCS name, the PCSG FQN `<pcs>-<i>-<sg>` or the PodClique FQN
`<pcs>-<i>-<clique>` / `<pcs>-<i>-<sg>-<j>-<clique>`. The FQN builders are repeated here (not imported from
`grove.expansion`) because `grove.expansion` imports this package; an import cycle would silently disable
claims there.
"""

from __future__ import annotations

import hashlib

from grove.claims.constants import DEVICES_TEMPLATE_SUFFIX, MAX_POD_CLAIM_NAME
from grove.expansion import naming as objects


def all_replicas_claim(owner: str, template: str) -> str:
    """AllReplicas scope: `<owner>-all-<tpl>`."""
    return f"{owner}-all-{template}"


def per_replica_claim(owner: str, index: int, template: str) -> str:
    """PerReplica scope: `<owner>-<idx>-<tpl>` (PCS replica, PCSG replica or pod index)."""
    return f"{owner}-{index}-{template}"


def podclique_fqn(
    pcs: str, replica: int, clique: str, group: str | None = None, group_replica: int | None = None
) -> str:
    """`<pcs>-<i>-<clique>` or, inside a scaling group, `<pcs>-<i>-<sg>-<j>-<clique>`: the operator's own names
    (grove.expansion.naming), so a claim's owner name always matches the object the operator creates."""
    if group is None:
        return objects.podclique_name(pcs, replica, clique)
    return objects.scaling_group_podclique_name(
        objects.scaling_group_name(pcs, replica, group), group_replica or 0, clique
    )


def devices_template(clique: str) -> str:
    """Name of the implicit template behind a clique's `devices` spec: `<clique>-devices`.

    The short spec behaves like a PCS-level resourceSharing entry filtered to the clique, so its objects get
    Grove's names: `<pcs>-<i>-<clique>-devices` (PerPod template, PerReplica claim), `<pcs>-all-<clique>-devices`.
    """
    return f"{clique}-{DEVICES_TEMPLATE_SUFFIX}"


def compute_domain(pcs: str, replica: int, group: str) -> str:
    """Auto-MNNVL ComputeDomain (and its channel template): `<pcs>-<i>-<group>`."""
    return f"{pcs}-{replica}-{group}"


def pod_claim_name(claim: str) -> str:
    """Pod-local name for a claim: Grove uses the claim name itself. It must be a DNS label (<= 63), so a
    longer name (which Grove would get rejected) is cut and given a stable hash suffix."""
    if len(claim) <= MAX_POD_CLAIM_NAME:
        return claim
    digest = hashlib.sha256(claim.encode()).hexdigest()[:8]
    return f"{claim[: MAX_POD_CLAIM_NAME - 9].rstrip('-')}-{digest}"
