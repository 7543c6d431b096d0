"""The operator's pod watch (`controllers.podwatch`) against the real local control plane: its first LIST fills
the index before `synced`, watch events keep it current (create, relabel, delete, other pods ignored), a new
LIST drops pods deleted while no watch ran, a watch the server ends is resumed, and an expired one is Gone."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from controllers import podwatch
from controllers.client import ApiError, Connection
from controllers.podwatch import Gone, PodWatch
from grove.api import constants as c
from grove.devcluster import DevCluster
from grove.expansion.labels import MANAGED_BY_SELECTOR
from grove.expansion.observed import PodView

Seen = list[tuple[str, tuple[str, ...], bool]]


def pod(name: str, clique: str | None, managed: bool = True) -> dict[str, Any]:
    labels = {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE} if managed else {}
    if clique:
        labels[c.LABEL_PODCLIQUE] = clique
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }


def names(watch: PodWatch, ns: str, clique: str) -> list[str]:
    key = ("pclq", ns, clique)
    return sorted(view.name for view in watch.index[key]) if key in watch.index else []


async def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def watching(cluster: DevCluster, ns: str, body: Callable[[PodWatch, Seen], Awaitable[None]]) -> None:
    """Run `body` with a PodWatch of `ns` running (and its observed events)."""
    seen: Seen = []

    async def main() -> None:
        watch = PodWatch(
            Connection.from_kubeconfig(str(cluster.kubeconfig)),
            MANAGED_BY_SELECTOR,
            [ns],
            lambda _ns, name, _uid, cliques, deleted: seen.append((name, cliques, deleted)),
        )
        task = asyncio.create_task(watch.run())
        try:
            await asyncio.wait_for(watch.synced.wait(), 30)
            await body(watch, seen)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_first_list_then_events_keep_the_index(cluster: DevCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    for name, clique, managed in [("a-0", "a", True), ("a-1", "a", True), ("b-0", "b", True), ("x", "a", False)]:
        core.create_namespaced_pod(namespace, pod(name, clique, managed))

    async def body(watch: PodWatch, seen: Seen) -> None:
        # Filled by the first LIST before `synced`; the unmanaged pod is never listed.
        assert names(watch, namespace, "a") == ["a-0", "a-1"]
        assert names(watch, namespace, "b") == ["b-0"]
        assert sorted(name for name, _, _ in seen) == ["a-0", "a-1", "b-0"]
        seen.clear()
        core.create_namespaced_pod(namespace, pod("b-1", "b"))
        await until(lambda: names(watch, namespace, "b") == ["b-0", "b-1"], "the created pod")
        core.patch_namespaced_pod("a-1", namespace, {"metadata": {"labels": {c.LABEL_PODCLIQUE: "b"}}})
        await until(lambda: names(watch, namespace, "a") == ["a-0"], "the relabelled pod to leave clique a")
        assert names(watch, namespace, "b") == ["a-1", "b-0", "b-1"]
        assert ("a-1", ("b", "a"), False) in seen  # both cliques' reconciles are told
        core.delete_namespaced_pod("b-0", namespace, grace_period_seconds=0)
        await until(lambda: names(watch, namespace, "b") == ["a-1", "b-1"], "the deleted pod to go")
        assert ("b-0", ("b",), True) in seen
        view = next(iter(watch.index[("pclq", namespace, "b")]))
        assert isinstance(view, PodView) and view.namespace == namespace

    watching(cluster, namespace, body)


def test_a_new_list_drops_pods_deleted_while_no_watch_ran(cluster: DevCluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client)
    core.create_namespaced_pod(namespace, pod("a-0", "a"))

    async def body(watch: PodWatch, seen: Seen) -> None:
        # A pod the index holds but the API server no longer has (its DELETED event was missed).
        ghost = next(iter(watch.index[("pclq", namespace, "a")]))
        watch.index.put(dataclasses.replace(ghost, name="a-9", uid="gone"))
        seen.clear()
        connector = aiohttp.TCPConnector(ssl=watch.connection.ssl_context)
        async with aiohttp.ClientSession(connector=connector, headers=watch.connection.headers) as session:
            await watch.list(session, namespace)
        assert names(watch, namespace, "a") == ["a-0"]
        assert ("a-9", ("a",), True) in seen

    watching(cluster, namespace, body)


def test_a_watch_the_server_ends_is_resumed_without_a_new_list(
    cluster: DevCluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(podwatch, "WATCH_SECONDS", 1)  # the API server ends each watch after a second
    core = client.CoreV1Api(cluster.api_client)

    async def body(watch: PodWatch, _: Seen) -> None:
        await asyncio.sleep(2.5)
        core.create_namespaced_pod(namespace, pod("a-0", "a"))
        await until(lambda: names(watch, namespace, "a") == ["a-0"], "the pod created after two watches ended")
        assert watch.relists == 0

    watching(cluster, namespace, body)


def test_an_expired_watch_is_gone_and_other_errors_are_raised() -> None:
    watch = PodWatch(Connection("https://unused", False, {}), MANAGED_BY_SELECTOR, [], lambda *_: None)
    with pytest.raises(Gone):
        watch._event({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}, "5")
    with pytest.raises(ApiError):
        watch._event({"type": "ERROR", "object": {"kind": "Status", "code": 500}}, "5")
    assert watch._event({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}, "5") == "9"


def test_an_unexpected_error_ends_the_watch(cluster: DevCluster, namespace: str) -> None:
    """Only API and connection errors are retried: anything else ends `run`, and the operator exits with it
    rather than keep serving a pod cache that stopped following the cluster."""
    client.CoreV1Api(cluster.api_client).create_namespaced_pod(namespace, pod("a-0", "a"))

    def broken(*_: Any) -> None:
        raise RuntimeError("observer bug")

    async def main() -> None:
        watch = PodWatch(Connection.from_kubeconfig(str(cluster.kubeconfig)), MANAGED_BY_SELECTOR, [namespace], broken)
        with pytest.raises(ExceptionGroup) as caught:
            await asyncio.wait_for(watch.run(), 30)
        assert caught.group_contains(RuntimeError, match="observer bug")

    asyncio.run(main())
