"""End to end: the example PodCliqueSet with `devices` (GPUs, a MIG slice, a ComputeDomain) on KWOK GPU nodes.

Pieces, all real: CRDs and DeviceClasses applied to the local control plane; one `grove driver --backend
simulated` process per GPU node publishing NVIDIA-shaped ResourceSlices; `grove operator` for the namespace;
the ComputeDomain controller (kopf); kube-scheduler allocating. Checks: generated templates and ComputeDomain,
allocations matching each clique's request, pods bound to matching nodes, and NodePrepareResources through
the kubelet test client on each pod's node writing the CDI spec for the claim.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from claims_cel import request_matches
from claims_k8s import CD_CRD, DEVICE_CLASSES, REPO, pod_claim, read_pod, results, wait_allocated, wait_bound
from kubernetes import client

from grove.api import PodCliqueSet
from grove.claims import devicespec
from grove.computedomain import model as cdm
from grove.devcluster import delete_nodes
from grove.devcluster.nodes import DEFAULT_CAPACITY
from grove.devcluster.wait import wait_for

EXAMPLE = REPO / "examples" / "gpu-mig-computedomain.yaml"
GROVE_CRDS = [REPO / "api" / "crds" / f for f in (
    "grove.io_podcliquesets.yaml", "grove.io_podcliques.yaml", "grove.io_podcliquescalinggroups.yaml",
    "scheduler.grove.io_podgangs.yaml")]
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}  # the example tolerates it
GPU = "gpu.nvidia.com"


def load_example() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return doc


def simulated_devices() -> list[dict[str, Any]]:
    """Slice devices the bundled driver's simulated backend offers: a whole H100 and an H100 1g.10gb slice."""
    from grove.dra.backends.catalog import MODELS
    from grove.dra.devices import AllocatableDevice, GpuInfo

    h100 = MODELS["H100-80GB"]
    info = GpuInfo(0, 0, "GPU-x", h100.product_name, h100.brand, h100.architecture, h100.cuda_compute_capability,
                   "570.133.20", "12.8", h100.memory_mib, "0000:01:00.0")
    return [AllocatableDevice(info).to_slice_device(),
            AllocatableDevice(info, mig_profile=h100.mig["1g.10gb"].profile).to_slice_device()]


def unsatisfiable_requests(doc: dict[str, Any]) -> list[str]:
    """Cliques of `doc` whose device requests no simulated device satisfies."""
    model = PodCliqueSet.model_validate(doc)
    devices = simulated_devices()
    bad = []
    for tpl in model.spec.template.cliques:
        if tpl.spec.devices is None or not devicespec.has_devices(tpl.spec.devices):
            continue
        for request in devicespec.claim_spec(tpl.spec.devices)["devices"]["requests"]:
            if not any(request_matches(request, GPU, d) for d in devices):
                bad.append(f"{tpl.name}/{request['name']}")
    return bad


def test_example_requests_fit_real_and_simulated_gpus() -> None:
    """The example must be schedulable on the GPUs it names. (An H100 80GB reports 81559Mi = 79.6Gi of memory,
    so `minMemory: 80Gi` matches no H100, simulated or real.)"""
    assert unsatisfiable_requests(load_example()) == [], f"fix {EXAMPLE.relative_to(REPO)}"


def fitted_example(namespace: str) -> dict[str, Any]:
    """The example, unchanged but for its namespace."""
    doc = copy.deepcopy(load_example())
    doc["metadata"]["namespace"] = namespace
    return doc


@dataclass
class Env:
    namespace: str
    nodes: dict[str, str]  # role -> node name: h100-a, h100-b, mig
    root: Path

    def dirs(self, node: str) -> tuple[Path, Path, Path]:
        base = self.root / node
        return base / "registry", base / "plugin", base / "cdi"


def _missing_pieces() -> list[str]:
    missing = [str(p.relative_to(REPO)) for p in [EXAMPLE, DEVICE_CLASSES, CD_CRD, *GROVE_CRDS] if not p.exists()]
    for module in ("controllers.commands", "grove.dra.commands", "grove.dra.kubeletclient"):
        try:
            __import__(module)
        except ImportError as error:
            missing.append(f"{module} ({error})")
    return missing


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def e2e(cluster: Any, namespace: str, short_tmp: Path) -> Iterator[Env]:
    tmp_path = short_tmp  # the drivers' unix sockets live below it
    missing = _missing_pieces()
    if missing:
        pytest.fail("end-to-end pieces missing: " + ", ".join(missing), pytrace=False)
    for path in [*GROVE_CRDS, CD_CRD, DEVICE_CLASSES]:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    for path in [*GROVE_CRDS, CD_CRD]:
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")

    suffix = uuid.uuid4().hex[:5]
    capacity = {**DEFAULT_CAPACITY, "cpu": "192", "memory": "2Ti"}
    names = cluster.create_nodes(3, f"e2e-{suffix}-", capacity=capacity, taints=[KWOK_TAINT])
    env = Env(namespace, {"h100-a": names[0], "h100-b": names[1], "mig": names[2]}, tmp_path)
    sim = tmp_path / "sim.yaml"
    sim.write_text(yaml.safe_dump({"nodes": {
        names[0]: {"model": "H100-80GB", "count": 8},
        names[1]: {"model": "H100-80GB", "count": 8},
        names[2]: {"model": "H100-80GB", "count": 1, "migLayout": {0: ["1g.10gb"] * 7}},
    }}))
    resource = client.ResourceV1Api(cluster.api_client)

    procs: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    run_env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": str(REPO)}
    try:
        for node in names:
            reg, data, cdi = env.dirs(node)
            cmd = [sys.executable, "-m", "grove.cli", "driver", "--node-name", node,
                   "--plugin-registration-dir", str(reg), "--plugin-data-dir", str(data), "--cdi-root", str(cdi),
                   "--backend", "simulated", "--simulated-config", str(sim), "--kubeconfig", str(cluster.kubeconfig),
                   "--compute-domain-channels"]
            procs.append(subprocess.Popen(cmd, stdout=(logs / f"driver-{node}.log").open("wb"),
                                          stderr=subprocess.STDOUT, cwd=REPO, env=run_env))
        operator = [sys.executable, "-m", "grove.cli", "operator", "--namespace", namespace, "--verbose"]
        procs.append(subprocess.Popen(operator, stdout=(logs / "operator.log").open("wb"), stderr=subprocess.STDOUT,
                                      cwd=REPO, env=run_env))
        for node, proc in zip(names, procs, strict=False):
            def published(node: str = node, proc: subprocess.Popen[bytes] = proc) -> bool:
                if proc.poll() is not None:  # a crashed driver: say so now, not after a timeout
                    log = (logs / f"driver-{node}.log").read_text(errors="replace")[-3000:]
                    pytest.fail(f"grove driver for {node} exited with {proc.returncode}:\n{log}", pytrace=False)
                drivers = {s.spec.driver for s in resource.list_resource_slice(
                    field_selector=f"spec.nodeName={node}").items}
                return drivers >= {GPU, "compute-domain.nvidia.com"}

            wait_for(published, 60, f"GPU slices of {node}")
        yield env
    finally:
        for proc in procs:
            _stop(proc)
        delete_nodes(cluster.api_client, names)
        for log in sorted(logs.glob("*.log")):  # kept in tmp_path; the tail helps when a wait timed out
            sys.stderr.write(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}\n")


def _template(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = api.sanitize_for_serialization(
            client.ResourceV1Api(api).read_namespaced_resource_claim_template(name, namespace))
        return out
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def _prepare_and_check_cdi(env: Env, node: str, claim: dict[str, Any]) -> None:
    """NodePrepareResources on the pod's node, as the kubelet would; the CDI spec names every device."""
    from grove.dra.kubeletclient import KubeletClient

    reg, _, cdi = env.dirs(node)
    wait_for(lambda: (reg / f"{GPU}-reg.sock").exists(), 30, f"driver socket on {node}")
    kubelet = KubeletClient(reg, GPU)
    try:
        kubelet.register()
        meta = claim["metadata"]
        out = kubelet.prepare([(env.namespace, meta["name"], meta["uid"])])[meta["uid"]]
        assert out.error == ""
        allocated = sorted(r["device"] for r in results(claim))
        assert sorted(d["deviceName"] for d in out.devices) == allocated
        assert all(d["poolName"] == node for d in out.devices)
        spec = json.loads((cdi / f"k8s.gpu.nvidia.com-claim_{meta['uid']}.json").read_text())
        assert spec["kind"] == "k8s.gpu.nvidia.com/claim"
        assert sorted(d["name"] for d in spec["devices"]) == sorted(f"{meta['uid']}-{d}" for d in allocated)
        ids = {i for d in out.devices for i in d["cdiDeviceIds"]}
        assert ids == {f"k8s.gpu.nvidia.com/claim={d['name']}" for d in spec["devices"]}
    finally:
        kubelet.close()


def test_example_end_to_end(cluster: Any, e2e: Env) -> None:
    api, ns = cluster.api_client, e2e.namespace
    doc = fitted_example(ns)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc))

    # generated objects: one template per devices clique, the ComputeDomain and (by its controller) its template
    for clique in ("prefill", "draft", "decode"):
        wait_for(lambda clique=clique: _template(api, ns, f"gpus-0-{clique}-devices"), 60, f"{clique} template")
    cd = wait_for(lambda: client.CustomObjectsApi(api).list_namespaced_custom_object(
        cdm.GROUP, cdm.VERSION, ns, cdm.PLURAL)["items"], 60, "ComputeDomain")
    assert [c["metadata"]["name"] for c in cd] == ["gpus-0-decode"]
    wait_for(lambda: _template(api, ns, "gpus-0-decode"), 60, "channel template of the ComputeDomain")

    h100 = {e2e.nodes["h100-a"], e2e.nodes["h100-b"]}
    pods = {"gpus-0-prefill-0": 2, "gpus-0-draft-0": 1, "gpus-0-decode-0": 4, "gpus-0-decode-1": 4}
    bound = {name: wait_bound(api, ns, name, timeout=120) for name in pods}
    assert bound["gpus-0-prefill-0"] in h100
    assert bound["gpus-0-draft-0"] == e2e.nodes["mig"]
    # one IMEX channel per node: the two decode pods of the domain are on different nodes
    assert {bound["gpus-0-decode-0"], bound["gpus-0-decode-1"]} == h100

    for name, count in pods.items():
        node = bound[name]
        claim = wait_allocated(api, ns, name, "grove-devices")
        got = results(claim)
        assert len(got) == count and {r["pool"] for r in got} == {node} and {r["driver"] for r in got} == {GPU}
        if name == "gpus-0-draft-0":
            assert got[0]["device"].startswith("gpu-0-mig-1g10gb-")
        else:
            assert all(r["device"].startswith("gpu-") and "-mig-" not in r["device"] for r in got)
        if name.startswith("gpus-0-decode"):
            channel = results(wait_allocated(api, ns, name, "mnnvl-claim"))
            assert [(r["driver"], r["pool"], r["device"]) for r in channel] == [
                ("compute-domain.nvidia.com", node, "channel-0")]
        containers = read_pod(api, ns, name)["spec"]["containers"]
        assert all({"name": "grove-devices"} in ct["resources"]["claims"] for ct in containers)
        _prepare_and_check_cdi(e2e, node, pod_claim(api, ns, name, "grove-devices"))

    # Ready comes with the first node; wait until every node's claim event has reached the controller
    status = wait_for(lambda: (s := client.CustomObjectsApi(api).get_namespaced_custom_object(
        cdm.GROUP, cdm.VERSION, ns, cdm.PLURAL, "gpus-0-decode").get("status") or {}).get("status") == "Ready"
        and len(s.get("nodes") or []) == len(h100) and s, 60, "ComputeDomain Ready on every node")
    assert sorted(n["name"] for n in status["nodes"]) == sorted(h100)


def test_resource_sharing_example_end_to_end(cluster: Any, e2e: Env) -> None:
    """Grove's resourceSharing example through the operator: each shared claim is allocated once and reserved
    by exactly the pods Grove's scopes and filters give it, which therefore share a node."""
    api, ns = cluster.api_client, e2e.namespace
    doc = yaml.safe_load((REPO / "examples" / "resource-sharing.yaml").read_text())
    doc["metadata"]["namespace"] = ns
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc))
    users = {
        "sharing-0-shared-gpu": ["sharing-0-cache-0", "sharing-0-router-0"],  # PCS PerReplica, filtered
        "sharing-0-model-0-shared-gpu": ["sharing-0-model-0-leader-0", "sharing-0-model-0-worker-0",
                                         "sharing-0-model-0-worker-1"],  # PCSG PerReplica
        # clique PerReplica: one claim per pod index, owner = the PodClique FQN
        **{f"sharing-0-decode-{k}-shared-gpu": [f"sharing-0-decode-{k}"] for k in range(2)},
    }
    nodes = {pod_name: wait_bound(api, ns, pod_name, timeout=120) for pods in users.values() for pod_name in pods}
    # Pods of one PodClique share a claim here, which kube-scheduler v1.37.2's gang placement cannot place, so
    # this PodCliqueSet is scheduled pod by pod and its PodGang says so (docs/gang-scheduling.md).
    gang = wait_for(lambda: (g := client.CustomObjectsApi(api).get_namespaced_custom_object(
        "scheduler.grove.io", "v1alpha1", ns, "podgangs", "sharing-0")).get("status") and g, 60, "PodGang status")
    messages = [cond.get("message", "") for cond in gang["status"].get("conditions") or []]
    assert any("backend none" in m for m in messages), messages
    for claim_name, pods in users.items():
        claim = wait_for(lambda claim_name=claim_name: (c := api.sanitize_for_serialization(
            client.ResourceV1Api(api).read_namespaced_resource_claim(claim_name, ns))).get("status", {}).get(
            "allocation") and c, 60, f"{claim_name} allocated")
        assert sorted(r["name"] for r in claim["status"]["reservedFor"]) == sorted(pods)
        (result,) = results(claim)
        assert {nodes[p] for p in pods} == {result["pool"]}
        assert claim["metadata"]["ownerReferences"][0]["kind"] == "PodCliqueSet"
