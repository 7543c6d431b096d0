"""Fixtures for the claims integration tests: GPU KWOK nodes with NVIDIA-shaped ResourceSlices.

`gpu_nodes` (per module): two H100 nodes with 8 GPUs and an A100 node whose GPU 0 is in MIG mode
(7 x 1g.10gb) next to three whole GPUs; every node also offers an IMEX channel (compute-domain.nvidia.com).
The nodes are tainted so pods of other suites never land on them, and our pods select them by label, so
other suites' GPU nodes cannot satisfy our claims either.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from claims_k8s import A100, DEVICE_CLASSES, H100, TAINT, TEST_LABEL, GpuNodes, gpu_device, gpu_slice, mig_device
from kubernetes import client

from grove.computedomain.devices import channel_slice
from grove.devcluster import delete_nodes
from grove.devcluster.nodes import DEFAULT_CAPACITY


def _delete_slice(api: client.ResourceV1Api, name: str) -> None:
    try:
        api.delete_resource_slice(name)
    except client.ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture(scope="module")
def gpu_nodes(cluster: Any) -> Iterator[GpuNodes]:
    if not DEVICE_CLASSES.exists():
        pytest.fail(f"{DEVICE_CLASSES} missing (DRA engineer's DeviceClasses)", pytrace=False)
    cluster.kubectl("apply", "-f", str(DEVICE_CLASSES))
    suffix = uuid.uuid4().hex[:5]
    labels = {TEST_LABEL: "true"}
    # DRA-only nodes: no device-plugin `nvidia.com/gpu` capacity. Pods asking for `nvidia.com/gpu` get GPUs
    # through the DeviceClass's extendedResourceName. (With both, kube-scheduler 1.37 fails PreBind for any pod
    # that also has a DRA claim: "nil or empty request mappings" -- e.g. Grove's auto-MNNVL pods.)
    capacity = {**DEFAULT_CAPACITY, "cpu": "192", "memory": "2Ti"}
    h100 = cluster.create_nodes(2, f"claims-{suffix}-h100-", labels=labels, capacity=capacity, taints=[TAINT])
    (a100,) = cluster.create_nodes(1, f"claims-{suffix}-a100-", labels=labels, capacity=capacity, taints=[TAINT])
    resource = client.ResourceV1Api(cluster.api_client)
    core = client.CoreV1Api(cluster.api_client)
    slices: list[dict[str, Any]] = []
    for node in h100:
        uid = core.read_node(node).metadata.uid
        slices.append(gpu_slice(node, uid, [gpu_device(node, i, H100) for i in range(8)]))
        slices.append(channel_slice(node, uid))
    uid = core.read_node(a100).metadata.uid
    a100_devices = [mig_device(a100, 0, A100, start) for start in range(7)]
    a100_devices += [gpu_device(a100, i, A100) for i in range(1, 4)]
    slices.append(gpu_slice(a100, uid, a100_devices))
    slices.append(channel_slice(a100, uid))
    for body in slices:
        resource.create_resource_slice(body)
    try:
        yield GpuNodes(h100, a100)
    finally:
        for body in slices:
            _delete_slice(resource, body["metadata"]["name"])
        delete_nodes(cluster.api_client, [*h100, a100])
