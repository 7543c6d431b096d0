"""Issue 14 against the real control plane: NVIDIA's channel-injection demo applied as is, with `grove operator`
(which watches only grove-managed pods) as the only ComputeDomain controller.

NVIDIA's demo (k8s-dra-driver-gpu docs, "ComputeDomains"): a ComputeDomain with `numNodes: 1` whose channel
template is `imex-channel-0`, and a plain pod (not made by grove-operator) using that template. The domain's
status must show the node and become Ready; deleting the namespace must log no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from claims_k8s import CD_CRD, REPO, GpuNodes, create, pod, wait_bound
from kubernetes import client

from grove.computedomain import model as m
from grove.devcluster.crds import wait_established
from grove.devcluster.wait import wait_for

pytestmark = pytest.mark.integration

# NVIDIA's demo objects, unchanged except for `pod()` pinning the pod to this module's GPU nodes.
DEMO_CD = {
    "apiVersion": "resource.nvidia.com/v1beta1",
    "kind": "ComputeDomain",
    "metadata": {"name": "imex-channel-injection"},
    "spec": {"numNodes": 1, "channel": {"resourceClaimTemplate": {"name": "imex-channel-0"}}},
}
DEMO_POD_SPEC = {
    "containers": [{"name": "ctr", "image": "ubuntu:22.04", "command": ["bash", "-c"],
                    "args": ["ls -la /dev/nvidia-caps-imex-channels; trap 'exit 0' TERM; sleep 9999 & wait"],
                    "resources": {"claims": [{"name": "imex-channel-0"}]}}],
    "resourceClaims": [{"name": "imex-channel-0", "resourceClaimTemplateName": "imex-channel-0"}],
}


@pytest.fixture
def operator(cluster: Any, tmp_path: Path) -> Iterator[Path]:
    """`grove operator` (all namespaces, as the sandbox runs it); yields its log file."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CD_CRD))
    wait_established(cluster.api_client, [m.CRD_NAME])
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "grove.cli", "operator"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cd_status(api: Any, namespace: str) -> dict[str, Any]:
    cd: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        m.GROUP, m.VERSION, namespace, m.PLURAL, "imex-channel-injection")
    return cd.get("status") or {}


def test_nvidia_channel_injection_demo(cluster: Any, gpu_nodes: GpuNodes, operator: Path) -> None:
    api = cluster.api_client
    core = client.CoreV1Api(api)
    namespace = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_for(lambda: core.list_namespaced_service_account(namespace).items, 30, "default ServiceAccount")

    create(api, namespace, DEMO_CD)
    # a fresh domain has its status written at once (issue 14: it stayed empty)
    assert wait_for(lambda: cd_status(api, namespace), 60, "initial status") == {"status": "NotReady", "nodes": []}
    wait_for(lambda: client.ResourceV1Api(api).list_namespaced_resource_claim_template(namespace).items, 60,
             "channel template imex-channel-0")
    create(api, namespace, pod("imex-channel-injection", DEMO_POD_SPEC))
    node = wait_bound(api, namespace, "imex-channel-injection")
    assert node in gpu_nodes.all

    status = wait_for(lambda: (s := cd_status(api, namespace)).get("status") == "Ready" and s, 60,
                      "ComputeDomain Ready")
    (entry,) = status["nodes"]
    ip = next(a.address for a in core.read_node(node).status.addresses if a.type == "InternalIP")
    assert entry == {"name": node, "ipAddress": ip, "cliqueID": entry["cliqueID"], "index": 0, "status": "Ready"}

    # deleting the namespace (domain, template, claim and pod vanish in any order) is a normal condition; the
    # template going first while the domain is still there is the race that logged a traceback (issue 14)
    core.delete_namespace(namespace)
    client.ResourceV1Api(api).delete_namespaced_resource_claim_template("imex-channel-0", namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
            return False
        except client.ApiException as error:
            return error.status == 404

    wait_for(gone, 120, f"namespace {namespace} deleted")
    time.sleep(2)  # events of the last deletions reach the operator
    text = operator.read_text(errors="replace")
    assert "Traceback" not in text, text[-5000:]
    assert " ERROR " not in text, text[-5000:]
