"""Owner references (grove-api.md §2.2): PCS controls Services, PodGangs, PCSGs and standalone PCLQs; a PCSG
controls its member PCLQs; a PCLQ controls its Pods. Deletion is left to garbage collection (Grove #556)."""

from __future__ import annotations

from typing import Any


def controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to `owner` (JSON with apiVersion, kind, metadata.name/uid)."""
    meta = owner.get("metadata") or {}
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta.get("uid") or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The controller ownerReference of an object, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None
