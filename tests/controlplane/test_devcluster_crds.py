"""Waiting for CRDs by name (grove.devcluster.crds) against the real control plane: a CRD created while the wait
already runs (absent, then without status, then Established) is waited for, not reported as an error (issue 14:
`kubectl wait --for=condition=Established crd --all` failed on a CRD without status and tore the sandbox down)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from grove.devcluster.cluster import repo_root
from grove.devcluster.crds import crd_names, wait_established

pytestmark = pytest.mark.integration


def crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}
            ],
        },
    }


def test_wait_covers_a_crd_created_while_waiting(cluster: Any) -> None:
    api = client.ApiextensionsV1Api(cluster.api_client)
    doc = crd(f"t{uuid.uuid4().hex[:8]}.example.com")
    name = doc["metadata"]["name"]
    timer = threading.Timer(1.0, lambda: api.create_custom_resource_definition(doc))
    timer.start()
    try:
        t0 = time.monotonic()
        wait_established(cluster.api_client, [name], timeout=60)
        waited = time.monotonic() - t0
        conditions = {c.type: c.status for c in api.read_custom_resource_definition(name).status.conditions}
        assert conditions.get("Established") == "True"
        assert waited >= 0.9  # it really waited for the CRD to appear (created 1 s in)
    finally:
        timer.cancel()
        api.delete_custom_resource_definition(name)


def test_wait_names_the_crds_that_never_come(cluster: Any) -> None:
    with pytest.raises(TimeoutError, match=r"widgets\.absent\.example\.com \(not found\)"):
        wait_established(cluster.api_client, ["widgets.absent.example.com"], timeout=1)


def test_sandbox_platform_crds_are_waited_for_by_name(cluster: Any) -> None:
    """What `grove sandbox up` does: apply the platform CRDs, then wait for each by name."""
    names = crd_names([repo_root() / "api/crds"])
    assert "podcliquesets.grove.io" in names and "computedomains.resource.nvidia.com" in names
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(repo_root() / "api/crds"))
    wait_established(cluster.api_client, names, timeout=60)


def test_crd_names_reads_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump_all([crd("a.example.com"), {"kind": "ConfigMap"}]))
    (tmp_path / "notes.txt").write_text("not a manifest")
    single = tmp_path / "b.yml"
    single.write_text(yaml.safe_dump(crd("b.example.com")))
    assert crd_names([tmp_path]) == ["widgets.a.example.com", "widgets.b.example.com"]
    assert crd_names([single]) == ["widgets.b.example.com"]
