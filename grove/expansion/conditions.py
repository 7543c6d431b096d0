"""metav1.Condition helpers: a condition keeps its lastTransitionTime while its status does not change, so a
reconcile that finds nothing new produces an identical status and therefore no write."""

from __future__ import annotations

from typing import Any


def make(type_: str, status: str, reason: str, message: str, now: str, generation: int | None) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def merge(previous: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """New conditions, keeping the previous lastTransitionTime where the status is unchanged; conditions of
    other types that exist already are kept (in their original order, new types appended)."""
    by_type = {c["type"]: c for c in previous}
    updated: dict[str, dict[str, Any]] = {}
    for cond in new:
        old = by_type.get(cond["type"])
        if old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
            cond = {**cond, "lastTransitionTime": old["lastTransitionTime"]}
        updated[cond["type"]] = cond
    out = [updated.pop(c["type"], c) for c in previous]
    out.extend(updated.values())
    return out


def get(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    for cond in conditions or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    cond = get(conditions, type_)
    return bool(cond and cond.get("status") == "True")


def is_false(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    cond = get(conditions, type_)
    return bool(cond and cond.get("status") == "False")
