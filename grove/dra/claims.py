"""Reading ResourceClaims from the API server, as the Go kubelet-plugin helper does.

The kubelet sends only namespace/name/UID; the allocation lives in the claim's status. The raw JSON
is used (``_preload_content=False``) so new API fields never trip the generated client's models.
"""

from __future__ import annotations

from typing import Any, Protocol

from kubernetes import client

from grove.dra.kube import raw_json


class ClaimError(RuntimeError):
    """The claim can't be prepared (missing, replaced, not allocated); reported per claim."""


class ClaimReader(Protocol):
    def get(self, namespace: str, name: str) -> dict[str, Any]: ...


class KubeClaimReader:
    """``ClaimReader`` over ``resource.k8s.io/v1``."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api = client.ResourceV1Api(api_client)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            resp = self.api.read_namespaced_resource_claim(name, namespace, _preload_content=False)
        except client.ApiException as e:
            if e.status == 404:
                raise ClaimError(f"ResourceClaim {namespace}/{name} not found") from e
            raise ClaimError(f"reading ResourceClaim {namespace}/{name}: {e.status} {e.reason}") from e
        return raw_json(resp)


def checked_allocation(claim: dict[str, Any], uid: str, driver: str) -> dict[str, Any]:
    """The claim's allocation after the helper's checks; results filtered to ``driver``.

    Fails if the UID differs (the claim was deleted and re-created under the same name) or the
    claim has no allocation yet.
    """
    meta = claim.get("metadata", {})
    ref = f"{meta.get('namespace')}/{meta.get('name')}"
    if meta.get("uid") != uid:
        raise ClaimError(f"ResourceClaim {ref} has UID {meta.get('uid')}, expected {uid} (claim was replaced)")
    alloc = (claim.get("status") or {}).get("allocation")
    if not alloc:
        raise ClaimError(f"ResourceClaim {ref} is not allocated")
    devices = alloc.get("devices") or {}
    return {
        "results": [r for r in devices.get("results") or [] if r.get("driver") == driver],
        "config": with_claim_requests(list(devices.get("config") or []), claim),
    }


def with_claim_requests(config: list[dict[str, Any]], claim: dict[str, Any]) -> list[dict[str, Any]]:
    """Allocation configs with the ``requests`` list of the claim's own config entries restored.

    The scheduler copies ``spec.devices.config`` into the allocation (``source: FromClaim``), in order;
    the last closing note saw one whose ``requests`` list came back empty, which would apply a
    per-request config to every request. The claim's spec is authoritative (and immutable), so a
    ``FromClaim`` entry without ``requests`` takes them from the spec entry it was copied from.
    """
    spec_cfg = ((claim.get("spec") or {}).get("devices") or {}).get("config") or []
    out, i = [], 0
    for c in config:
        if c.get("source") == "FromClaim":
            src = spec_cfg[i] if i < len(spec_cfg) else {}
            i += 1
            if not c.get("requests") and src.get("requests") and src.get("opaque") == c.get("opaque"):
                c = {**c, "requests": list(src["requests"])}
        out.append(c)
    return out
