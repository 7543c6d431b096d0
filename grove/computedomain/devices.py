"""The `compute-domain.nvidia.com` ResourceSlice of a node, so simulated nodes offer IMEX channels.

NVIDIA's compute-domain plugin publishes exactly `channel-0` (type channel, id 0) and `daemon-0` (type
daemon, id 0) per node (dra.md §3.3): one domain and one channel claim per node. The DeviceClass
`compute-domain-default-channel.nvidia.com` selects `type == 'channel' && id == 0`. Pool = node name and an
owner reference to the Node, as for GPU slices, so the slice goes away with the node.
"""

from __future__ import annotations

from typing import Any

from grove.computedomain import model as m


def channel_devices() -> list[dict[str, Any]]:
    """The devices one node offers (`spec.devices` entries), e.g. for the DRA engineer's SlicePublisher."""
    return [
        {"name": "channel-0", "attributes": {"type": {"string": "channel"}, "id": {"int": 0}}},
        {"name": "daemon-0", "attributes": {"type": {"string": "daemon"}, "id": {"int": 0}}},
    ]


def slice_name(node_name: str) -> str:
    """Deterministic name, so publishing twice is an update, not a second slice."""
    return f"{node_name}-{m.DRIVER}"


def channel_slice(node_name: str, node_uid: str, generation: int = 1) -> dict[str, Any]:
    """The complete ResourceSlice object for `node_name`."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {
            "name": slice_name(node_name),
            "labels": {"app.kubernetes.io/managed-by": "grove-dra-driver"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid, "controller": True}
            ],
        },
        "spec": {
            "driver": m.DRIVER,
            "pool": {"name": node_name, "generation": generation, "resourceSliceCount": 1},
            "nodeName": node_name,
            "devices": channel_devices(),
        },
    }
