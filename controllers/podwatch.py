"""The operator's pods from a plain list and watch, not from a kopf index and event handler (issue #13).

Why: pods bring most of the operator's events (created, ungated, bound, started: four or five each), and kopf
runs every event through its per-object machinery (a worker task and queue per object, body wrappers, an
indexing pass and an event-handler pass). In a 1000-pod deploy that machinery took about half the operator's
CPU, against 8.5% for its own reconciles, and pods were created later than a bulk client creates them. Here an
event costs one JSON decode, a slim `PodView` and a dict update.

Like kopf's indexes, the cache is filled from a complete LIST before any reconcile may read it (`synced`): a
reconcile on a half-filled cache would re-create pods that exist. A watch the API server ends is resumed from
the last resourceVersion seen; one that broke or expired (410 Gone) is replaced by a new LIST, which also drops
the pods deleted while no watch ran.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import aiohttp

from controllers.client import ApiError, Connection
from grove.api import constants as c
from grove.expansion.observed import PodView, pod_view

log = logging.getLogger("grove.pods")

LIST_PAGE = 500  # pods per LIST page: a big namespace is read in pieces, not held as one answer
WATCH_SECONDS = 600  # the API server ends a watch after this long; it is resumed at once
RETRY_SECONDS = 1.0

Key = tuple[str, str, str]  # ("pclq", namespace, PodClique name): the key the reconciles read by
# An observer of pod events: (namespace, pod name, pod uid, PodClique names it was and is under, deleted).
Observer = Callable[[str, str, str, tuple[str, ...], bool], None]


class Gone(Exception):
    """The watch's resourceVersion is too old (410): only a new LIST can say what changed since."""


class PodIndex(Mapping[Key, Iterable[PodView]]):
    """Pods by PodClique, read like a kopf index (`index[key]` is an iterable of views)."""

    def __init__(self) -> None:
        self.by_clique: dict[Key, dict[str, PodView]] = {}
        self.where: dict[tuple[str, str], str] = {}  # (namespace, pod name) -> PodClique name

    def __getitem__(self, key: Key) -> Iterable[PodView]:
        return self.by_clique[key].values()

    def __iter__(self) -> Iterator[Key]:
        return iter(self.by_clique)

    def __len__(self) -> int:
        return len(self.by_clique)

    def put(self, view: PodView) -> PodView | None:
        """Store a pod's view; returns its view under another PodClique if it was relabelled."""
        where = (view.namespace, view.name)
        before = self.remove(*where) if self.where.get(where, view.podclique) != view.podclique else None
        self.where[where] = view.podclique
        self.by_clique.setdefault(("pclq", view.namespace, view.podclique), {})[view.name] = view
        return before

    def remove(self, namespace: str, name: str) -> PodView | None:
        """Forget a pod; returns its view (None: it was not here)."""
        clique = self.where.pop((namespace, name), None)
        if clique is None:
            return None
        key = ("pclq", namespace, clique)
        pods = self.by_clique[key]
        view = pods.pop(name)
        if not pods:
            del self.by_clique[key]
        return view

    def names(self, namespace: str | None) -> list[tuple[str, str]]:
        """(namespace, name) of every pod held, in one namespace or (None) all."""
        return [k for k in self.where if namespace is None or k[0] == namespace]


class PodWatch:
    """List and watch the pods matching `selector` (in `namespaces`, or all), keeping `index` current and
    telling `observe` about every change. `run` until cancelled; `synced` is set once every first LIST is in.
    API and connection errors are retried for ever; anything else ends `run` (the operator then exits)."""

    def __init__(self, connection: Connection, selector: str, namespaces: list[str], observe: Observer) -> None:
        self.connection = connection
        self.selector = selector
        self.namespaces: list[str | None] = list(namespaces) or [None]
        self.observe = observe
        self.index = PodIndex()
        self.synced = asyncio.Event()
        self._listed: set[str | None] = set()
        self.relists = 0  # LISTs after the first, all namespaces together (410s and broken connections)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=WATCH_SECONDS + 60)
        connector = aiohttp.TCPConnector(ssl=self.connection.ssl_context, limit=0)
        session = aiohttp.ClientSession(connector=connector, headers=self.connection.headers, timeout=timeout)
        # One namespace failing for good stops them all (the TaskGroup cancels the others).
        async with session, asyncio.TaskGroup() as group:
            for namespace in self.namespaces:
                group.create_task(self._follow(session, namespace))

    def _path(self, namespace: str | None) -> str:
        return self.connection.server + (f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods")

    async def _follow(self, session: aiohttp.ClientSession, namespace: str | None) -> None:
        """LIST, then watch from there for as long as the watch can be resumed; LIST again when it cannot."""
        while True:
            try:
                version = await self.list(session, namespace)
                while True:
                    version = await self.watch(session, namespace, version)
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("pod watch of %s expired (410): listing again", namespace or "all namespaces")
            except (TimeoutError, aiohttp.ClientError, ApiError, ValueError) as error:
                log.warning("pod watch of %s broke, listing again: %s", namespace or "all namespaces", error)
                await asyncio.sleep(RETRY_SECONDS)
            self.relists += 1

    async def list(self, session: aiohttp.ClientSession, namespace: str | None) -> str:
        """Replace what is held for `namespace` by a complete LIST (in pages); returns its resourceVersion."""
        seen: set[tuple[str, str]] = set()
        params = {"labelSelector": self.selector, "limit": str(LIST_PAGE)}
        while True:
            async with session.get(self._path(namespace), params=params) as response:
                text = await response.text()
                if response.status >= 300:
                    raise ApiError(response.status, text, "GET", self._path(namespace))
            answer = json.loads(text)
            del text
            for pod in answer.get("items") or []:
                meta = pod.get("metadata") or {}
                seen.add((meta.get("namespace", ""), meta.get("name", "")))
                self._apply("ADDED", pod)
            version = str((answer.get("metadata") or {}).get("resourceVersion", ""))
            following = (answer.get("metadata") or {}).get("continue")
            if not following:
                break
            params = {**params, "continue": following}
        for ns, name in self.index.names(namespace):
            if (ns, name) not in seen:  # deleted while no watch ran
                gone = self.index.remove(ns, name)
                if gone is not None:
                    self.observe(ns, name, gone.uid, (gone.podclique,), True)
        if namespace not in self._listed:
            self._listed.add(namespace)
            if len(self._listed) == len(self.namespaces):
                self.synced.set()
        return version

    async def watch(self, session: aiohttp.ClientSession, namespace: str | None, version: str) -> str:
        """Follow one watch from `version` until the API server ends it; returns the last resourceVersion."""
        params = {
            "watch": "1",
            "labelSelector": self.selector,
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        async with session.get(self._path(namespace), params=params) as response:
            if response.status == 410:
                raise Gone()
            if response.status >= 300:
                raise ApiError(response.status, await response.text(), "GET", self._path(namespace))
            rest = b""
            async for chunk in response.content.iter_any():  # lines can be longer than aiohttp's readline allows
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if line.strip():
                        version = self._event(json.loads(line), version)
        return version

    def _event(self, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ApiError(int(obj.get("code") or 500), json.dumps(obj), "WATCH", "pods")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._apply(kind, obj)
        return str((obj.get("metadata") or {}).get("resourceVersion") or version)

    def _apply(self, kind: str, pod: dict[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        ns, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
        clique = (meta.get("labels") or {}).get(c.LABEL_PODCLIQUE)
        if kind == "DELETED" or not clique:
            gone = self.index.remove(ns, name)
            if gone is not None or kind == "DELETED":
                self.observe(ns, name, uid, (gone.podclique,) if gone else (), kind == "DELETED")
            return
        before = self.index.put(pod_view(pod))
        self.observe(ns, name, uid, (clique, before.podclique) if before else (clique,), False)
