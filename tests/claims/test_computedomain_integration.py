"""The ComputeDomain controller (grove/computedomain/controller.py under kopf) against the real control plane:
channel template creation and re-creation, channel allocation by kube-scheduler, status from joined nodes,
and auto-MNNVL objects from claim_objects/inject_claims."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from claims_fixtures import clique, pcs
from claims_k8s import CD_CRD, GpuNodes, create, pause, pod, read_claim, read_pod, results, wait_allocated, wait_bound
from kopf.testing import KopfRunner
from kubernetes import client

from grove.api import constants as c
from grove.claims import claim_objects, inject_claims
from grove.computedomain import model as m
from grove.devcluster.wait import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def controller(cluster: Any) -> Iterator[KopfRunner]:
    """The CRD installed and the controller running (standalone kopf, all namespaces)."""
    # server-side with force: this file's schema wins over any other copy of the CRD applied in the session
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CD_CRD))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{m.CRD_NAME}", "--timeout=60s")
    args = ["run", "--standalone", "--all-namespaces", "--verbose", "-m", "grove.computedomain.controller"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    (cluster.workdir / "computedomain-controller.log").write_text(runner.output)
    assert runner.exception is None, runner.output[-5000:]


def compute_domain(name: str, num_nodes: int = 0) -> dict[str, Any]:
    return {"apiVersion": m.API_VERSION, "kind": m.KIND, "metadata": {"name": name},
            "spec": {"numNodes": num_nodes, "channel": {"resourceClaimTemplate": {"name": f"{name}-channel"}}}}


def read_cd(api: Any, namespace: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        m.GROUP, m.VERSION, namespace, m.PLURAL, name)
    return out


def read_template(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = api.sanitize_for_serialization(
            client.ResourceV1Api(api).read_namespaced_resource_claim_template(name, namespace))
        return out
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def channel_pod(name: str, template: str, node: str) -> dict[str, Any]:
    spec = {"containers": [{**pause(), "resources": {"claims": [{"name": "channel"}]}}],
            "resourceClaims": [{"name": "channel", "resourceClaimTemplateName": template}],
            "nodeSelector": {"kubernetes.io/hostname": node}}
    return pod(name, spec)


def cd_status(api: Any, namespace: str, name: str) -> dict[str, Any]:
    return read_cd(api, namespace, name).get("status") or {}


def test_template_channel_and_status(cluster: Any, namespace: str, gpu_nodes: GpuNodes,
                                     controller: KopfRunner) -> None:
    api = cluster.api_client
    create(api, namespace, compute_domain("cd-a"))
    cd = read_cd(api, namespace, "cd-a")
    rct = wait_for(lambda: read_template(api, namespace, "cd-a-channel"), 60, "channel template")
    assert rct["metadata"]["ownerReferences"][0]["uid"] == cd["metadata"]["uid"]
    assert rct["metadata"]["labels"][m.LABEL_COMPUTE_DOMAIN] == cd["metadata"]["uid"]
    params = rct["spec"]["spec"]["devices"]["config"][0]["opaque"]["parameters"]
    assert params == {"apiVersion": m.API_VERSION, "kind": "ComputeDomainChannelConfig",
                      "domainID": cd["metadata"]["uid"], "allocationMode": "Single"}
    assert cd_status(api, namespace, "cd-a").get("status", "NotReady") == "NotReady"

    node = gpu_nodes.h100[0]
    create(api, namespace, channel_pod("worker", "cd-a-channel", node))
    assert wait_bound(api, namespace, "worker") == node
    (result,) = results(wait_allocated(api, namespace, "worker", "channel"))
    assert (result["driver"], result["pool"], result["device"]) == ("compute-domain.nvidia.com", node, "channel-0")

    status = wait_for(lambda: (s := cd_status(api, namespace, "cd-a")).get("status") == "Ready" and s, 60,
                      "ComputeDomain Ready")
    (entry,) = status["nodes"]
    assert entry["name"] == node and entry["status"] == "Ready" and entry["index"] == 0
    assert "cliqueID" in entry and "ipAddress" in entry

    # a deleted channel template comes back while the ComputeDomain lives
    client.ResourceV1Api(api).delete_namespaced_resource_claim_template("cd-a-channel", namespace)
    wait_for(lambda: (t := read_template(api, namespace, "cd-a-channel")) and t["metadata"]["uid"] != rct[
        "metadata"]["uid"], 60, "channel template re-created")

    # leaving: the pod goes, the node leaves, the domain is NotReady again
    client.CoreV1Api(api).delete_namespaced_pod("worker", namespace, grace_period_seconds=0)
    wait_for(lambda: cd_status(api, namespace, "cd-a").get("status") == "NotReady"
             and not cd_status(api, namespace, "cd-a").get("nodes"), 60, "node left")


def test_num_nodes_waits_for_enough_nodes(cluster: Any, namespace: str, gpu_nodes: GpuNodes,
                                          controller: KopfRunner) -> None:
    api = cluster.api_client
    create(api, namespace, compute_domain("cd-two", num_nodes=2))
    wait_for(lambda: read_template(api, namespace, "cd-two-channel"), 60, "channel template")
    first, second = gpu_nodes.h100
    create(api, namespace, channel_pod("one", "cd-two-channel", first))
    wait_for(lambda: len(cd_status(api, namespace, "cd-two").get("nodes") or []) == 1, 60, "first node joined")
    assert cd_status(api, namespace, "cd-two")["status"] == "NotReady"
    create(api, namespace, channel_pod("two", "cd-two-channel", second))
    status = wait_for(lambda: (s := cd_status(api, namespace, "cd-two")).get("status") == "Ready" and s, 60,
                      "Ready with two nodes")
    assert sorted((n["name"], n["index"]) for n in status["nodes"]) == [(first, 0), (second, 1)]


def test_auto_mnnvl_objects_work_end_to_end(cluster: Any, namespace: str, gpu_nodes: GpuNodes,
                                            controller: KopfRunner) -> None:
    """claim_objects' ComputeDomain + inject_claims' mnnvl-claim: the GPU container's pod gets a channel."""
    api = cluster.api_client
    doc = pcs([clique("w", 1, spec={"podSpec": {"containers": [pause("gpu", gpus=1), pause("side")]}})],
              annotations={c.ANNOTATION_MNNVL_GROUP: "nvl"}, replicas=1)
    doc["metadata"]["namespace"] = namespace
    (cd,) = claim_objects(doc, 0)
    assert cd["kind"] == m.KIND and cd["metadata"]["name"] == "inf-0-nvl"
    create(api, namespace, cd)
    wait_for(lambda: read_template(api, namespace, "inf-0-nvl"), 60, "channel template inf-0-nvl")
    spec = inject_claims(doc["spec"]["template"]["cliques"][0]["spec"]["podSpec"], doc, "w", 0, None, None, 0)
    create(api, namespace, pod("w-0", spec))
    node = wait_bound(api, namespace, "w-0")
    assert node in gpu_nodes.all
    assert [r["device"] for r in results(wait_allocated(api, namespace, "w-0", "mnnvl-claim"))] == ["channel-0"]
    # the `nvidia.com/gpu: 1` limit is served by DRA too (DeviceClass gpu.nvidia.com's extendedResourceName)
    extended = read_pod(api, namespace, "w-0")["status"]["extendedResourceClaimStatus"]
    gpu_claim = read_claim(api, namespace, extended["resourceClaimName"])
    assert [(r["driver"], r["pool"]) for r in results(gpu_claim)] == [("gpu.nvidia.com", node)]
    status = wait_for(lambda: (s := cd_status(api, namespace, "inf-0-nvl")).get("status") == "Ready" and s, 60,
                      "auto-MNNVL domain Ready")
    assert [n["name"] for n in status["nodes"]] == [node]
