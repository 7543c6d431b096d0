"""DRA claims for PodCliqueSets (issue #5): pure functions from a PodCliqueSet to claim objects and pod wiring.

The operator's seam (grove.expansion.claims calls these):

- `claim_objects(pcs, replica_index)`: ResourceClaimTemplates (PerPod `devices`), ResourceClaims (Grove's
  resourceSharing and shared `devices`) and ComputeDomains (auto-MNNVL) of one PodCliqueSet replica;
  replica 0 also returns the set-level (AllReplicas) objects.
- `set_level_objects(pcs)`: the set-level objects alone.
- `inject_claims(pod_spec, pcs, clique, replica, group, group_replica, pod_index)`: the pod spec with
  `resourceClaims` and every container's `resources.claims`.
- `external_template_refs(pcs)`: external ResourceClaimTemplates to fetch and pass as
  `claim_objects(..., external_templates=...)`.
- `is_stale(pcs, obj)`: whether an existing claim object is left over from a scale-in (delete it).
"""

from grove.claims.cleanup import is_stale
from grove.claims.inject import inject_claims, pod_claim_refs
from grove.claims.plan import claim_objects, external_template_refs, set_level_objects

__all__ = [
    "claim_objects",
    "external_template_refs",
    "inject_claims",
    "is_stale",
    "pod_claim_refs",
    "set_level_objects",
]
