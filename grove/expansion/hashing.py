"""Pod template hash (`grove.io/pod-template-hash`), as Grove computes it per clique: a hash over the
clique's `{labels, annotations, podSpec}` with the PCS `priorityClassName` set (grove-api.md §2.10).
Changing replicas or minAvailable must not change it (those never roll pods)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def stable_hash(value: Any, length: int = 10) -> str:
    """A short, stable hash of JSON-able data (sorted keys, so dict order never matters)."""
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()[:length]


def pod_template_hash(
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None,
    pod_spec: dict[str, Any],
    priority_class_name: str | None,
) -> str:
    """Hash of one clique's pod template."""
    spec = dict(pod_spec)
    if priority_class_name:
        spec["priorityClassName"] = priority_class_name
    return stable_hash({"labels": labels or {}, "annotations": annotations or {}, "podSpec": spec})


def generation_hash(template_hashes: list[str]) -> str:
    """PodCliqueSet `status.currentGenerationHash`: over all cliques' template hashes, in clique order."""
    return stable_hash(template_hashes)
