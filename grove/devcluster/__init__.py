"""A local Kubernetes control plane (real etcd, kube-apiserver, controller-manager, scheduler) with KWOK nodes.

Used by the integration tests (`tests/conftest.py`) and by `grove sandbox`. See `cluster.DevCluster`.
"""

from grove.devcluster.cluster import (
    COMPONENTS,
    FEATURE_GATES,
    RUNTIME_CONFIG,
    DevCluster,
    DevClusterError,
    KubectlError,
    default_bin_dir,
    missing_binaries,
    repo_root,
)
from grove.devcluster.nodes import (
    GPU_PRODUCT,
    create_nodes,
    delete_nodes,
    gpu_node_capacity,
    gpu_node_labels,
    node_manifest,
    wait_nodes_ready,
)
from grove.devcluster.wait import wait_for

__all__ = [
    "COMPONENTS",
    "FEATURE_GATES",
    "GPU_PRODUCT",
    "RUNTIME_CONFIG",
    "DevCluster",
    "DevClusterError",
    "KubectlError",
    "create_nodes",
    "default_bin_dir",
    "delete_nodes",
    "gpu_node_capacity",
    "gpu_node_labels",
    "missing_binaries",
    "node_manifest",
    "repo_root",
    "wait_for",
    "wait_nodes_ready",
]
