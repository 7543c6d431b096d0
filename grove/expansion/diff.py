"""Desired-vs-observed comparison. The API server adds fields (defaults, status, metadata), so a desired object
matches when it is a *subset* of the observed one; this is what keeps a steady state at zero writes."""

from __future__ import annotations

from typing import Any


def is_subset(desired: Any, observed: Any) -> bool:
    """True if every key of `desired` is in `observed` with an equal (recursively subset) value. Lists must
    have the same length and element-wise subset values."""
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return False
        return all(k in observed and is_subset(v, observed[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(desired) != len(observed):
            return False
        return all(is_subset(d, o) for d, o in zip(desired, observed, strict=True))
    return bool(desired == observed)


def update_patch(desired: dict[str, Any], observed: dict[str, Any]) -> dict[str, Any] | None:
    """A merge patch bringing observed labels, annotations and spec to desired, or None if they match."""
    patch: dict[str, Any] = {}
    dmeta, ometa = desired.get("metadata") or {}, observed.get("metadata") or {}
    meta_patch: dict[str, Any] = {}
    for key in ("labels", "annotations"):
        if dmeta.get(key) and not is_subset(dmeta[key], ometa.get(key) or {}):
            meta_patch[key] = dmeta[key]
    if meta_patch:
        patch["metadata"] = meta_patch
    if "spec" in desired and not is_subset(desired["spec"], observed.get("spec") or {}):
        patch["spec"] = desired["spec"]
    return patch or None
