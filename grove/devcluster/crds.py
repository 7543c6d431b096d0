"""Waiting for CustomResourceDefinitions to be served, one by name.

Why not `kubectl wait --for=condition=Established crd --all`: right after an apply, a CRD can exist without any
status yet, and `kubectl wait` then fails at once (".status.conditions accessor error: <nil>") instead of waiting,
which tore a `grove sandbox up` down (issue 14). Here a CRD that is missing, has no conditions yet or is not
Established yet is simply polled again until the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

CRD_KIND = "CustomResourceDefinition"


def crd_names(paths: Iterable[Path]) -> list[str]:
    """The names of the CRDs in manifest files or directories of them (`*.yaml`, `*.yml`, `*.json`)."""
    names: list[str] = []
    for path in paths:
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json")) if path.is_dir() else [path]
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if isinstance(doc, dict) and doc.get("kind") == CRD_KIND:
                    names.append(str(doc["metadata"]["name"]))
    return names


def is_established(crd: Any) -> bool:
    """Whether a CRD (as returned by the client) has condition Established=True; no status counts as not yet."""
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def wait_established(
    api_client: client.ApiClient, names: Sequence[str], timeout: float = 60.0, interval: float = 0.2
) -> None:
    """Poll each CRD by name until it is Established; raise TimeoutError naming those that are not."""
    api = client.ApiextensionsV1Api(api_client)
    deadline = time.monotonic() + timeout
    pending = list(dict.fromkeys(names))
    last: dict[str, str] = {}
    while pending:
        for name in list(pending):
            try:
                crd = api.read_custom_resource_definition(name, _request_timeout=10)
            except client.ApiException as error:
                if error.status != 404 and (error.status or 0) < 500:
                    raise
                last[name] = "not found" if error.status == 404 else f"API error {error.status}"
                continue
            if is_established(crd):
                pending.remove(name)
            else:
                last[name] = "no Established condition yet"
        if not pending:
            return
        if time.monotonic() >= deadline:
            detail = ", ".join(f"{n} ({last.get(n, '?')})" for n in pending)
            raise TimeoutError(f"CRDs not Established after {timeout:.0f}s: {detail}")
        time.sleep(interval)
