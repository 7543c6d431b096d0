"""Integration smoke test for DRA (resource.k8s.io/v1) on the local control plane: the resourceclaim
controller creates the claim from a template, kube-scheduler allocates a device from a ResourceSlice and binds
the pod to that slice's node."""

from __future__ import annotations

import uuid

from kubernetes import client

from grove.devcluster import DevCluster, delete_nodes
from grove.devcluster.wait import wait_for

DRIVER = "gpu.test.grove.io"


def test_claim_template_allocates_device_and_binds_pod(cluster: DevCluster, namespace: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    node = f"dra-node-{suffix}-0"
    device_class = f"test-gpu-{suffix}"
    cluster.create_nodes(1, f"dra-node-{suffix}-", labels={"topology.kubernetes.io/zone": "zone-a"})
    resource = client.ResourceV1Api(cluster.api_client)
    core = client.CoreV1Api(cluster.api_client)
    try:
        resource.create_device_class(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "DeviceClass",
                "metadata": {"name": device_class},
                "spec": {"selectors": [{"cel": {"expression": f"device.driver == '{DRIVER}'"}}]},
            }
        )
        resource.create_resource_slice(
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceSlice",
                "metadata": {"name": f"{node}-{DRIVER}"},
                "spec": {
                    "driver": DRIVER,
                    "nodeName": node,
                    "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                    "devices": [
                        {
                            "name": f"gpu-{i}",
                            "attributes": {
                                "productName": {"string": "NVIDIA H100 80GB HBM3"},
                                "index": {"int": i},
                            },
                            "capacity": {"memory": {"value": "80Gi"}},
                        }
                        for i in range(2)
                    ],
                },
            }
        )
        resource.create_namespaced_resource_claim_template(
            namespace,
            {
                "apiVersion": "resource.k8s.io/v1",
                "kind": "ResourceClaimTemplate",
                "metadata": {"name": "one-gpu"},
                "spec": {
                    "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": device_class}}]}}
                },
            },
        )
        core.create_namespaced_pod(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "gpu-pod"},
                "spec": {
                    "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}],
                    "containers": [
                        {
                            "name": "main",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {"claims": [{"name": "gpu"}]},
                        }
                    ],
                },
            },
        )

        def claim_name() -> str | None:
            pod = core.read_namespaced_pod("gpu-pod", namespace)
            for status in pod.status.resource_claim_statuses or []:
                if status.name == "gpu" and status.resource_claim_name:
                    return str(status.resource_claim_name)
            return None

        name = wait_for(claim_name, 60, "resourceclaim controller to create the claim")
        claim = wait_for(
            lambda: (
                (c := resource.read_namespaced_resource_claim(name, namespace)).status and c.status.allocation and c
            ),
            60,
            "scheduler to allocate the claim",
        )
        results = claim.status.allocation.devices.results
        assert len(results) == 1
        assert results[0].driver == DRIVER and results[0].pool == node
        assert results[0].device in {"gpu-0", "gpu-1"}
        assert [r.name for r in claim.status.reserved_for] == ["gpu-pod"]
        assert claim.metadata.owner_references[0].name == "gpu-pod"

        pod = wait_for(
            lambda: (p := core.read_namespaced_pod("gpu-pod", namespace)).status.phase == "Running" and p,
            60,
            "pod Running",
        )
        assert pod.spec.node_name == node

        # Deleting the pod releases and garbage-collects the generated claim.
        core.delete_namespaced_pod("gpu-pod", namespace)
        wait_for(lambda: not resource.list_namespaced_resource_claim(namespace).items, 60, "claim garbage-collected")
    finally:
        delete_nodes(cluster.api_client, [node])
        try:
            resource.delete_resource_slice(f"{node}-{DRIVER}")
        except client.ApiException as error:
            if error.status != 404:
                raise
        resource.delete_device_class(device_class)
