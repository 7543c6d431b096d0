"""A small asyncio Kubernetes REST client for the operator's writes.

Why not kopf's client: it is private ("Kopf is not a Kubernetes client library"). Why not kubernetes.aio by
default: it builds typed models and validates every response, which costs CPU and memory per request for no
gain here (objects are plain JSON dicts already); `bench/scale.py --client` compares both. One aiohttp session
with keep-alive, bounded concurrency (asyncio semaphore), an optional QPS token bucket, and tenacity retries
on 409 conflicts (patches only), 429 and 5xx. Creates are idempotent: AlreadyExists counts as success, which
together with deterministic names makes crash/restart converge without duplicates.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from controllers import metrics

log = logging.getLogger("grove.client")

# kind -> (API prefix, plural). Namespaced kinds only (the operator never writes cluster-scoped objects).
RESOURCES: dict[tuple[str, str], str] = {
    ("v1", "Pod"): "/api/v1/namespaces/{ns}/pods",
    ("v1", "Service"): "/api/v1/namespaces/{ns}/services",
    ("v1", "Event"): "/api/v1/namespaces/{ns}/events",
    ("grove.io/v1alpha1", "PodCliqueSet"): "/apis/grove.io/v1alpha1/namespaces/{ns}/podcliquesets",
    ("grove.io/v1alpha1", "PodClique"): "/apis/grove.io/v1alpha1/namespaces/{ns}/podcliques",
    ("grove.io/v1alpha1", "PodCliqueScalingGroup"): "/apis/grove.io/v1alpha1/namespaces/{ns}/podcliquescalinggroups",
    ("scheduler.grove.io/v1alpha1", "PodGang"): "/apis/scheduler.grove.io/v1alpha1/namespaces/{ns}/podgangs",
}

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    """REST collection path of a namespaced kind (known kinds, or the usual lower-case plural otherwise)."""
    template = RESOURCES.get((api_version, kind))
    if template is None:
        prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        plural = kind.lower() + ("es" if kind.lower().endswith("s") else "s")
        template = prefix + "/namespaces/{ns}/" + plural
    return template.format(ns=namespace)


def object_path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{collection_path(obj['apiVersion'], obj['kind'], meta['namespace'])}/{meta['name']}"


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, body: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {status} {body[:300]}")
        self.status = status
        self.body = body

    @property
    def reason(self) -> str:
        try:
            return str(json.loads(self.body).get("reason", ""))
        except ValueError:
            return ""

    @property
    def namespace_terminating(self) -> bool:
        """A create refused because its namespace is being deleted: an expected race, not a failure."""
        return self.status == 403 and "NamespaceTerminating" in self.body


def _retryable(error: BaseException) -> bool:
    if isinstance(error, ApiError):
        return error.status == 429 or error.status >= 500 or (error.status == 409 and error.reason == "Conflict")
    return isinstance(error, (aiohttp.ClientError, asyncio.TimeoutError))


@dataclass
class Connection:
    """Where and how to reach the API server."""

    server: str
    ssl_context: ssl.SSLContext | bool
    headers: dict[str, str]

    @classmethod
    def from_kubeconfig(cls, path: str | None = None) -> Connection:
        """From a kubeconfig (KUBECONFIG or ~/.kube/config), or the in-cluster service account."""
        from kubernetes import client as k8s
        from kubernetes import config as k8s_config

        cfg = k8s.Configuration()
        try:
            k8s_config.load_kube_config(config_file=path, client_configuration=cfg)
        except k8s_config.ConfigException:
            k8s_config.load_incluster_config(client_configuration=cfg)
        ctx: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=cfg.ssl_ca_cert or None) if cfg.verify_ssl else False
        )
        if cfg.cert_file and isinstance(ctx, ssl.SSLContext):
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        elif cfg.cert_file:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        headers = {}
        token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
        if token:
            prefix = cfg.api_key_prefix.get("authorization", "")
            headers["Authorization"] = f"{prefix} {token}".strip() if not token.startswith("Bearer") else token
        return cls(server=cfg.host.rstrip("/"), ssl_context=ctx, headers=headers)


class TokenBucket:
    """Client-side QPS limit (like client-go's qps/burst). qps <= 0 disables it."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.capacity = max(burst, 1)
        self.tokens = float(self.capacity)
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        if self.qps <= 0:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.qps)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.qps)


class PrioritySemaphore:
    """A semaphore whose waiters are served by priority (lower first), then in arrival order.

    Why: at scale the API server is the bottleneck, and not all writes are equal. Pods (and the PodCliques and
    PodGangs they need) come first, then gate removal, then Services, then status: this is what makes "all
    pods created" as fast as a bulk create although the operator writes more objects in all."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self.seq = 0

    async def acquire(self, priority: int) -> None:
        if self.value > 0 and not self.waiters:
            self.value -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seq += 1
        heapq.heappush(self.waiters, (priority, self.seq, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # we were handed the slot but will not use it
            raise

    def release(self) -> None:
        while self.waiters:
            _, _, future = heapq.heappop(self.waiters)
            if not future.done():
                future.set_result(None)
                return
        self.value += 1


# Write priorities (lower first). Depth first (issue #13): a PodClique's pods (and the PodGroups the scheduler
# holds them for) go before the PodCliques and PodGangs of further PCS replicas, so scheduling starts with the
# first replica and overlaps the rest of the creation instead of waiting for every parent object.
PRIORITY_PODS = 0
PRIORITY_GATES = 1
PRIORITY_PARENTS = 2
PRIORITY_CHILDREN = 3
PRIORITY_STATUS = 4
PRIORITY_EVENTS = 5
RETRY_FIRST_WAIT = 0.1  # seconds before the first retry; then exponential with jitter, at most 5 s
LATENCY_WEIGHT = 0.05  # of the newest request in the moving average (about the last 20 writes)
_CREATE_PRIORITY = {
    "Pod": PRIORITY_PODS,
    # The scheduler holds a gang's pods until their PodGroup tree exists (issue #9): with the pods.
    "PodGroup": PRIORITY_PODS,
    "CompositePodGroup": PRIORITY_PODS,
    "PodClique": PRIORITY_PARENTS,
    "PodCliqueScalingGroup": PRIORITY_PARENTS,
    "PodGang": PRIORITY_PARENTS,  # before its PodCliques (same priority, sent first), so pods need no gate
    "Event": PRIORITY_EVENTS,
}


class Kube:
    """Async writes (and the odd read) against the API server."""

    def __init__(self, connection: Connection, *, concurrency: int = 64, qps: float = 0, burst: int = 0) -> None:
        self.connection = connection
        self.semaphore = PrioritySemaphore(concurrency)
        self.bucket = TokenBucket(qps, burst or int(qps * 1.5) or 1)
        self.writes: Counter[str] = Counter()
        # Moving average of write latency (s): how busy the API server is now (status pacing, issue #13).
        self.latency = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._concurrency = concurrency

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.connection.ssl_context, limit=self._concurrency)
            self._session = aiohttp.ClientSession(
                base_url=None,
                connector=connector,
                headers=self.connection.headers,
                timeout=aiohttp.ClientTimeout(total=60),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        priority: int = PRIORITY_CHILDREN,
        attempts: int = 8,
        answer: bool = True,
    ) -> dict[str, Any]:
        """One request with retries (`attempts` in all); returns the decoded JSON answer (`answer=False`: {}, the
        answer is read but not decoded; most writes never look at it, and at scale decoding thousands of pods
        costs CPU and memory, issue #13).

        The first try goes without tenacity: at scale thousands of writes wait for a slot at once, and each
        retry state costs about a kilobyte while almost none is ever retried (issue #13: peak RSS)."""
        try:
            return await self._once(method, path, body, content_type, params, priority, answer)
        except Exception as error:
            if attempts <= 1 or not _retryable(error):
                raise
        await asyncio.sleep(RETRY_FIRST_WAIT)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(attempts - 1),
            wait=wait_exponential_jitter(multiplier=RETRY_FIRST_WAIT, max=5),
            reraise=True,
        ):
            with attempt:
                return await self._once(method, path, body, content_type, params, priority, answer)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        body: Any,
        content_type: str,
        params: dict[str, str] | None,
        priority: int,
        answer: bool,
    ) -> dict[str, Any]:
        session = await self.session()
        await self.semaphore.acquire(priority)
        try:
            # Serialized once a slot is free: a burst queues thousands of writes (issue #13: peak RSS).
            data = None if body is None else json.dumps(body, separators=(",", ":"))
            if method != "GET":
                await self.bucket.take()
                self.writes[method] += 1
            started = time.monotonic()
            async with session.request(
                method,
                self.connection.server + path,
                data=data,
                params=params,
                headers={"Content-Type": content_type} if data is not None else None,
            ) as response:
                if response.status < 300 and not answer:
                    await response.read()
                    text = ""
                else:
                    text = await response.text()
                metrics.record_request(method, path, response.status)
                if method != "GET":
                    self.latency += (time.monotonic() - started - self.latency) * LATENCY_WEIGHT
                if response.status >= 300:
                    raise ApiError(response.status, text, method, path)
                return json.loads(text) if text else {}
        finally:
            self.semaphore.release()

    async def create(self, obj: dict[str, Any], *, answer: bool = False) -> dict[str, Any] | None:
        """POST; AlreadyExists is success (returns None then). `answer`: return the created object (else {})."""
        meta = obj["metadata"]
        try:
            path = collection_path(obj["apiVersion"], obj["kind"], meta["namespace"])
            priority = _CREATE_PRIORITY.get(obj["kind"], PRIORITY_CHILDREN)
            return await self.request("POST", path, obj, priority=priority, answer=answer)
        except ApiError as error:
            if error.status == 409 and error.reason == "AlreadyExists":
                return None
            raise

    async def patch(
        self,
        obj_or_path: dict[str, Any] | str,
        body: dict[str, Any],
        *,
        content_type: str = MERGE,
        subresource: str | None = None,
        priority: int | None = None,
    ) -> dict[str, Any] | None:
        """PATCH an object (or its subresource); a missing object is not an error (returns None)."""
        path = obj_or_path if isinstance(obj_or_path, str) else object_path(obj_or_path)
        if subresource:
            path = f"{path}/{subresource}"
        try:
            if priority is None:
                priority = PRIORITY_STATUS if subresource == "status" else PRIORITY_CHILDREN
            return await self.request("PATCH", path, body, content_type, priority=priority, answer=False)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def delete(self, obj: dict[str, Any], *, uid: str | None = None, propagation: str = "Background") -> None:
        """DELETE (background propagation, so GC removes the children); NotFound is success. With `uid`, a
        precondition makes sure a re-created object of the same name is never deleted by mistake. Foreground
        keeps the object (with a deletionTimestamp) until its children are gone: a PodClique replaced by a
        rollout or gang termination is re-created only once its old pods no longer hold their names."""
        body: dict[str, Any] = {"propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", object_path(obj), body, answer=False)
        except ApiError as error:
            if error.status not in (404, 409):
                raise
