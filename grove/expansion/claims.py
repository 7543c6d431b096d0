"""The one seam to DRA (`grove.claims`, another engineer's package, issue #5).

If `grove.claims` is importable, its `claim_objects(pcs, replica_index)` gives ResourceClaims (or templates)
to create per PCS replica and `inject_claims(...)` adds claim references to a pod spec. Without it, there
are no claims and pod specs pass through unchanged, so DRA plugs in later without touching the operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grove.api import PodCliqueSet

try:  # pragma: no cover - depends on whether the claims package has landed
    from grove.claims import claim_objects as _claim_objects
    from grove.claims import external_template_refs as _external_template_refs
    from grove.claims import inject_claims as _inject_claims
    from grove.claims import is_stale as _is_stale
except ImportError:  # pragma: no cover
    _claim_objects = None  # type: ignore[assignment, unused-ignore]
    _inject_claims = None  # type: ignore[assignment, unused-ignore]
    _external_template_refs = None  # type: ignore[assignment, unused-ignore]
    _is_stale = None  # type: ignore[assignment, unused-ignore]


def available() -> bool:
    return _claim_objects is not None


def replica_claims(
    pcs: PodCliqueSet,
    replica: int,
    *,
    group_replicas: Mapping[str, int] | None = None,
    clique_replicas: Mapping[str, int] | None = None,
    external_templates: Mapping[tuple[str, str], Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Claim objects for one PCS replica (empty without grove.claims). Live counts by scaling-group / clique
    name (default: the template's); external resourceSharing templates by (namespace, name)."""
    if _claim_objects is None:
        return []
    return list(
        _claim_objects(
            pcs,
            replica,
            group_replicas=group_replicas,
            clique_replicas=clique_replicas,
            external_templates=external_templates,
        )
    )


def external_refs(pcs: PodCliqueSet) -> list[tuple[str, str]]:
    """(namespace, name) of the ResourceClaimTemplates outside the PCS that its resourceSharing needs."""
    if _external_template_refs is None:
        return []
    return list(_external_template_refs(pcs))


def stale(
    pcs: PodCliqueSet,
    obj: Mapping[str, Any],
    *,
    group_replicas: Mapping[str, int] | None = None,
    clique_replicas: Mapping[str, int] | None = None,
) -> bool:
    """Whether an existing claim object of the PCS is left over from a scale-in (never without grove.claims)."""
    if _is_stale is None:
        return False
    return bool(_is_stale(pcs, obj, group_replicas=group_replicas, clique_replicas=clique_replicas))


def inject(
    pod_spec: dict[str, Any],
    pcs: PodCliqueSet | None,
    clique: str,
    replica: int,
    group: str | None,
    group_replica: int | None,
    pod_index: int,
) -> dict[str, Any]:
    """Pod spec with claim references (unchanged without grove.claims or without the PCS at hand)."""
    if _inject_claims is None or pcs is None:
        return pod_spec
    return dict(_inject_claims(pod_spec, pcs, clique, replica, group, group_replica, pod_index))
