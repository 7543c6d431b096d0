"""Shared operator state: the API client, the caches, the work queue, options, and short-lived expectations
that stop the operator from repeating a write before its watch event has come back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controllers.cache import Cache
from controllers.client import ApiError, Kube
from controllers.schedulingbackend import Backends
from controllers.workqueue import WorkQueue
from grove.api import PodCliqueSet
from grove.expansion import hashing, podclique
from grove.expansion import spec as specs
from grove.expansion.startup import DEFAULT_STARTUP_WAIT_IMAGE

log = logging.getLogger("grove.operator")


@dataclass
class Options:
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    concurrency: int = 32
    workers: int = 64
    qps: float = 0.0
    burst: int = 0
    startup_wait_image: str = DEFAULT_STARTUP_WAIT_IMAGE
    verbose: bool = False
    leader_elect: bool = False
    lease_name: str = "grove-operator"
    lease_namespace: str = "default"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    metrics_port: int = 0  # 0: not served
    health_port: int = 0
    gang_scheduling: str = "auto"  # auto | off (issue #9)


@dataclass
class Loaded:
    """A PodCliqueSet generation, parsed and validated once (keyed by uid and generation)."""

    model: PodCliqueSet | None
    errors: list[tuple[str, str]]
    generation_hash: str | None
    # clique template name -> the pod-template hash its PodCliques should be at
    template_hashes: dict[str, str] = field(default_factory=dict)


class Expectations:
    """Writes sent but not yet observed through the watch, with a time-to-live (the watch may lag)."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self.items: dict[Any, tuple[float, Any]] = {}

    def expect(self, key: Any, value: Any = True) -> None:
        self.items[key] = (time.monotonic(), value)

    def pending(self, key: Any, value: Any = True) -> bool:
        item = self.items.get(key)
        if item is None:
            return False
        if time.monotonic() - item[0] > self.ttl:
            del self.items[key]
            return False
        return bool(item[1] == value)

    def observe(self, key: Any) -> None:
        self.items.pop(key, None)


@dataclass
class Runtime:
    kube: Kube
    options: Options
    cache: Cache = field(default_factory=Cache)
    queue: WorkQueue | None = None
    loaded: dict[tuple[str, int], Loaded] = field(default_factory=dict)
    # Creates are cleared by the object's first watch event; other writes are keyed by uid (and the value
    # sent), so a long TTL is safe: a lagging watch under load must not make the operator repeat itself.
    creates: Expectations = field(default_factory=lambda: Expectations(ttl=30.0))
    writes: Expectations = field(default_factory=lambda: Expectations(ttl=300.0))
    warned: set[tuple[str, Any]] = field(default_factory=set)
    # (pcs uid, replica) -> the key (generation, live counts, external templates) its claims were created for.
    claims_done: dict[tuple[str, int], Any] = field(default_factory=dict)
    # external ResourceClaimTemplate (ns, name) -> PodCliqueSets (ns, name) whose resourceSharing uses it.
    external_users: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)
    status_written: dict[str, float] = field(default_factory=dict)
    # uid -> when the object got on its way (its status is paced by `writes.STATUS_PROGRESS_RATE`, issue #13)
    progressing: dict[str, float] = field(default_factory=dict)
    # PCS and PodClique uid -> hash of what its last event showed besides status (`status_only`).
    spec_seen: dict[str, int] = field(default_factory=dict)
    # pcs uid -> (generation hash, replica being updated) last logged: one INFO line per rollout phase change.
    phases: dict[str, tuple[str | None, int | None]] = field(default_factory=dict)
    # key -> timer that enqueues it at a deadline (gang termination), one per key, earliest wins.
    timers: dict[Any, asyncio.TimerHandle] = field(default_factory=dict)
    timer_hints: dict[Any, set[Hashable] | None] = field(default_factory=dict)  # what each timer's pass looks at
    backends: Backends = field(default_factory=Backends)  # issue #9: scheduler backend and its objects
    # Writes a reconcile hands off instead of waiting for (`spawn`): its last status write, which at low
    # priority can wait seconds for a slot behind a burst of creates and would hold a worker all that time.
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    # uid -> the reconcile (key, hint) to run again once its status write in flight is done (None: none waits)
    status_busy: dict[str, tuple[tuple[str, str, str], Hashable] | None] = field(default_factory=dict)

    def observed(self, kind: str, namespace: str, name: str, uid: str | None, deleted: bool) -> None:
        """An event for an object: its create is no longer in flight; forget per-object state once deleted
        (so memory does not grow with churn)."""
        self.creates.observe((kind, namespace, name))
        self.cache.forget(kind, namespace, name)
        if deleted and uid:
            self.status_written.pop(uid, None)
            self.progressing.pop(uid, None)
            self.spec_seen.pop(uid, None)
            self.phases.pop(uid, None)
            for prefix in ("ungate", "release", "delete", "status"):
                self.writes.observe((prefix, uid))
            for key in [k for k in self.loaded if k[0] == uid]:
                del self.loaded[key]
            for done in [k for k in self.claims_done if k[0] == uid]:
                del self.claims_done[done]
            if kind == "PodGang":
                self.backends.forget(uid)
            if kind == "PodCliqueSet":
                for users in self.external_users.values():
                    users.discard((namespace, name))
            self.warned = {w for w in self.warned if not (isinstance(w[1], tuple) and w[1][:1] == (uid,))}

    def status_only(self, body: Mapping[str, Any], type_: str | None) -> bool:
        """Whether this event of a PodCliqueSet or PodClique changed nothing but its status since the object's
        last event (mostly our own status writes). Such an event needs no pass over the objects its spec makes:
        a full PCS pass per PCS status write, and a replica's spec step per PodClique status write, were most
        of the PCS reconcile's work during a 1000-pod deploy (issue #13)."""
        meta = body.get("metadata") or {}
        uid = meta.get("uid", "")
        seen = hash(
            (
                meta.get("generation"),
                tuple(sorted((meta.get("labels") or {}).items())),
                tuple(sorted((meta.get("annotations") or {}).items())),
                meta.get("deletionTimestamp"),
                repr([dict(r) for r in meta.get("ownerReferences") or []]),
            )
        )
        same = type_ == "MODIFIED" and self.spec_seen.get(uid) == seen
        self.spec_seen[uid] = seen
        return same

    def spawn(self, write: Coroutine[Any, Any, Any], requeue: tuple[str, str, str] | None) -> None:
        """Run `write` without waiting for it; if it fails, `requeue` is reconciled again (after a second)."""
        task = asyncio.create_task(write)
        self.tasks.add(task)

        def finished(done: asyncio.Task[Any]) -> None:
            self.tasks.discard(done)
            if done.cancelled() or done.exception() is None:
                return
            error = done.exception()
            if isinstance(error, ApiError) and error.namespace_terminating:
                return  # the namespace takes the object with it (issue 14)
            log.warning("write for %s failed, reconciling it again: %s", "/".join(requeue or ()), error)
            if requeue is not None and self.queue is not None:
                self.queue.add(requeue, None, delay=1.0)

        task.add_done_callback(finished)

    async def drain(self) -> None:
        """Wait for the writes handed off with `spawn` (tests; shutdown cancels them instead)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def enqueue(self, kind: str, namespace: str, name: str, hint: Any = None) -> None:
        if self.queue is not None and name:
            self.queue.add((kind, namespace, name), hint)

    def load(self, pcs: dict[str, Any]) -> Loaded:
        meta = pcs["metadata"]
        key = (meta.get("uid", ""), int(meta.get("generation") or 0))
        hit = self.loaded.get(key)
        if hit is not None:
            return hit
        errors = [(e.field, e.message) for e in specs.validate(pcs)]
        model: PodCliqueSet | None = None
        gen_hash = None
        hashes: dict[str, str] = {}
        if not errors:
            model = specs.load(pcs)
            model.metadata.namespace = meta.get("namespace")
            hashes = {cl.name: podclique.template_hash(model, cl) for cl in model.spec.template.cliques}
            gen_hash = hashing.generation_hash([hashes[cl.name] for cl in model.spec.template.cliques])
        for old in [k for k in self.loaded if k[0] == key[0]]:
            del self.loaded[old]
        result = Loaded(model, errors, gen_hash, hashes)
        self.loaded[key] = result
        return result


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
