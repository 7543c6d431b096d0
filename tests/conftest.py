"""Shared fixtures: one real local control plane per test session (see grove.devcluster).

`cluster` starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok from `.cache/bin`
(built by `make controlplane`; nothing is built here) with three Ready KWOK nodes `kwok-node-0..2`.
A cluster that cannot start fails the tests that need it: it is never a skip, because a skipped integration
suite looks green while testing nothing.

Tests that use `cluster` (directly or through `namespace`) are marked `integration` automatically, so
`pytest -m "not integration"` runs the unit tests only.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from grove.devcluster import DevCluster, DevClusterError, default_bin_dir, missing_binaries

CLUSTER_FIXTURES = {"cluster", "namespace"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    """The session's control plane. Attributes: kubeconfig, api_client, kubectl(), create_nodes(), server,
    workdir. Also exports KUBECONFIG for code under test (kopf, subprocesses)."""
    bin_dir = default_bin_dir()
    missing = missing_binaries(bin_dir)
    if missing:
        pytest.fail(
            f"control-plane binaries missing in {bin_dir} ({', '.join(missing)}): run `make controlplane` "
            "(or `make install`) first" + (" [CI]" if os.environ.get("CI") else ""),
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("devcluster")
    dev = DevCluster(workdir, bin_dir, initial_nodes=3)
    try:
        dev.start()
    except DevClusterError as error:
        pytest.fail(
            f"local control plane failed to start (binaries from `make controlplane` in {bin_dir}):\n{error}",
            pytrace=False,
        )
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(dev.kubeconfig)
    try:
        yield dev
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        dev.stop()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory for unix sockets: their paths must stay under 108 bytes, and pytest's
    tmp_path can be longer."""
    with tempfile.TemporaryDirectory(prefix="grove-") as directory:
        yield Path(directory)


@pytest.fixture
def namespace(cluster: DevCluster) -> Iterator[str]:
    """A fresh namespace whose `default` ServiceAccount exists (pods can be created at once); deleted after."""
    from kubernetes import client

    core = client.CoreV1Api(cluster.api_client)
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"grove.io/test": "true"}}})
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except client.ApiException as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
