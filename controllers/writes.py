"""The write primitives every reconciler shares: create-if-missing, patch-if-different, status-if-different,
delete-once. Each remembers what it sent (`Runtime.creates` / `Runtime.writes`) until the watch event of the
write arrives, so a reconcile that runs again before that never repeats a write."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Hashable, Iterable
from typing import Any

from controllers.queue_keys import PCLQ, PCSG
from controllers.runtime import Runtime
from grove.api import constants as c
from grove.expansion import diff, status

# Requests sent by the current reconcile (a reconcile that wrote something skips its status write: the watch
# events of its own writes trigger the next pass, which then sees fresh state).
_SENT: contextvars.ContextVar[list[int]] = contextvars.ContextVar("grove_sent")

# Status writes of one object are at least this far apart: pods often go created -> scheduled -> Ready within a
# second (on KWOK in milliseconds), and one write for the lot is enough. The reconcile is re-queued instead.
STATUS_MIN_INTERVAL = 1.0
# ... and further apart when the API server is slow (issue #13): the interval grows with the moving average of
# write latency, so under load fewer intermediate statuses compete with pods, bindings and kubelet (KWOK) writes,
# up to STATUS_MAX_INTERVAL. An idle API server answers in milliseconds: the interval stays at the minimum.
STATUS_LATENCY_FACTOR = 20.0
STATUS_MAX_INTERVAL = 5.0
# Statuses of objects still on their way (a PodClique whose pods are not all Ready, a PodGang not Running) share
# a budget of this many writes per second: each such object is written at most every (objects on their way /
# rate) seconds, counted from the moment it got on its way, at most STATUS_PROGRESS_MAX_INTERVAL apart. A few
# objects keep the 1 s pace; in a 1000-pod deploy most objects are written once, when they are Ready. The API
# server answers quickly even while the scheduler and kubelets starve for CPU, so its latency alone paced too
# little: 2.5 progress writes per object cost 28% of the time to Ready (issue #13). Settled statuses are not
# held back by it (availability, `kubectl wait`).
STATUS_PROGRESS_RATE = 20.0
STATUS_PROGRESS_MAX_INTERVAL = 30.0


# Kinds whose create answers are served from the cache until the watch delivers them (issue #13), and the
# reconcile each one starts at once: a PodClique's pods are created as soon as it exists, not when its watch
# event arrives (seconds late under a write burst); a PodGang lets those pods be created without the gate.
WRITE_THROUGH = {c.KIND_PODCLIQUE: PCLQ, c.KIND_PODCLIQUESCALINGGROUP: PCSG, c.KIND_PODGANG: None}


def status_interval(rt: Runtime, progressing: bool = False) -> float:
    latency = float(getattr(rt.kube, "latency", 0.0))
    interval = min(max(STATUS_MIN_INTERVAL, STATUS_LATENCY_FACTOR * latency), STATUS_MAX_INTERVAL)
    if progressing:
        share = min(len(rt.progressing) / STATUS_PROGRESS_RATE, STATUS_PROGRESS_MAX_INTERVAL)
        interval = max(interval, share)
    return interval


def start_counting() -> None:
    """Begin a reconcile: `run` reports the requests sent from here on."""
    _SENT.set([0])


def sent() -> int:
    """Requests counted since `start_counting` (the current reconcile)."""
    counter = _SENT.get(None)
    return counter[0] if counter is not None else 0


def count() -> None:
    counter = _SENT.get(None)
    if counter is not None:
        counter[0] += 1


async def counted(call: Awaitable[Any]) -> Any:
    count()
    return await call


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def replica_index(obj: dict[str, Any]) -> int:
    """The PCS replica an object belongs to, from its label (-1: none, a set-level object)."""
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(c.LABEL_PCS_REPLICA_INDEX, "")
    return int(value) if value.isdigit() else -1


def pod_path(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods/{name}"


async def run(writes: Iterable[Awaitable[Any]]) -> int:
    """Run writes concurrently (the client bounds concurrency); raise the first error after all finished.
    Returns how many requests were actually sent."""
    counter = _SENT.get()
    before = counter[0]
    results = await asyncio.gather(*writes, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return counter[0] - before


async def ensure(
    rt: Runtime, desired: dict[str, Any], observed: dict[str, Any] | None, *, answer: bool = False
) -> dict[str, Any] | None:
    """Create if missing (unless a create is already in flight), patch if labels/annotations/spec differ.
    `answer`: return the created object as the API server answered it (None when nothing was created)."""
    key = object_key(desired)
    if observed is None:
        if rt.creates.pending(key):
            return None
        rt.creates.expect(key)
        count()
        through = key[0] in WRITE_THROUGH
        try:
            created = await rt.kube.create(desired, answer=answer or through)
        except Exception:
            rt.creates.observe(key)  # let the retry write again
            raise
        if through and created:
            rt.cache.remember(created)
            reconcile = WRITE_THROUGH[key[0]]
            if reconcile is not None:
                rt.enqueue(reconcile, key[1], key[2])
        return created if answer else None
    rt.creates.observe(key)
    if observed["metadata"].get("deletionTimestamp"):
        return None
    patch = diff.update_patch(desired, observed)
    if patch is None:
        return None
    rv = observed["metadata"].get("resourceVersion")
    if rt.writes.pending(("spec", key), (rv, repr(patch))):
        return None
    rt.writes.expect(("spec", key), (rv, repr(patch)))
    count()
    try:
        await rt.kube.patch(desired, patch)
    except Exception:
        rt.writes.observe(("spec", key))
        raise
    return None


def status_paced(
    rt: Runtime, obj: dict[str, Any], requeue: tuple[str, str, str], hint: Hashable = None, progressing: bool = False
) -> bool:
    """Whether a status write for `obj` would be paced now; if so the reconcile is re-queued for when it may go,
    and the caller can skip computing a status it could not send (a PodCliqueSet's status reads every replica:
    computed on each child event it made a 5000-pod deploy quadratic, issue #13). `progressing`: the status of
    an object on its way (STATUS_PROGRESS_RATE), paced from its last write or from when it got on its way."""
    uid = obj["metadata"].get("uid")
    marks = [rt.status_written.get(uid), rt.progressing.get(uid) if progressing else None]
    last = max((m for m in marks if m is not None), default=None)
    if last is None:
        return False
    wait = status_interval(rt, progressing) - (time.monotonic() - last)
    if wait <= 0:
        return False
    if rt.queue is not None:
        rt.queue.add(requeue, hint, delay=wait)
    return True


async def write_status(
    rt: Runtime,
    obj: dict[str, Any],
    desired: dict[str, Any],
    requeue: tuple[str, str, str] | None = None,
    *,
    urgent: bool = False,
    background: bool = False,
    hint: Hashable = None,
    progressing: bool = False,
) -> bool:
    """Patch /status only if it differs from the observed status (and was not just sent). `urgent`: not paced
    (a rolling update's next step waits for this write, issue 8). `background`: handed off (`Runtime.spawn`),
    for a reconcile's last write: nothing in the pass depends on it, and waiting for a status slot behind a
    burst of creates would hold a worker that new PodCliques need (issue #13).

    Returns whether the API server is known to hold `desired` now (observed, or written and answered), so a
    caller may act on it: a rolling update deletes a selected pod only once its selection is recorded.
    `hint`: what the re-queued reconcile needs to look at (the work queue's hint; None: everything).
    `progressing`: `desired` is the status of an object still on its way (STATUS_PROGRESS_RATE)."""
    uid = obj["metadata"].get("uid")
    if progressing:
        rt.progressing.setdefault(uid, time.monotonic())
    else:
        rt.progressing.pop(uid, None)
    if not status.differs(obj.get("status"), desired):
        return True
    if rt.writes.pending(("status", uid), desired):
        return uid not in rt.status_busy  # sent, and answered unless still in flight
    if requeue is not None and not urgent and status_paced(rt, obj, requeue, hint, progressing):
        return False
    if uid in rt.status_busy:
        # One status write per object at a time: a newer status waits for the one in flight, then the
        # object is reconciled again (handed-off writes would otherwise pile up behind a burst, issue #13).
        if requeue is not None:
            rt.status_busy[uid] = (requeue, hint)
        return False
    rt.status_written[uid] = time.monotonic()
    rt.writes.expect(("status", uid), desired)
    rt.status_busy[uid] = None
    send = _send_status(rt, obj, desired)
    if background:
        rt.spawn(send, requeue)
        return False
    await send
    return True


async def _send_status(rt: Runtime, obj: dict[str, Any], desired: dict[str, Any]) -> None:
    uid = obj["metadata"].get("uid")
    try:
        await rt.kube.patch(obj, {"status": desired}, subresource="status")
    except Exception:
        rt.writes.observe(("status", uid))
        raise
    finally:
        again = rt.status_busy.pop(uid, None)
        if again is not None and rt.queue is not None:
            rt.queue.add(*again)


async def delete(rt: Runtime, obj: dict[str, Any], propagation: str = "Background") -> None:
    uid = obj["metadata"].get("uid")
    if obj["metadata"].get("deletionTimestamp") or rt.writes.pending(("delete", uid)):
        return
    rt.writes.expect(("delete", uid))
    count()
    try:
        await rt.kube.delete(obj, uid=uid, propagation=propagation)
    except Exception:
        rt.writes.observe(("delete", uid))
        raise


async def forget_on_error(rt: Runtime, key: Any, call: Awaitable[Any]) -> Any:
    """Await a write recorded under `key` in `rt.writes`; forget it on failure so the retry writes again."""
    try:
        return await call
    except Exception:
        rt.writes.observe(key)
        raise


async def create_or_forget(rt: Runtime, key: Any, obj: dict[str, Any]) -> None:
    """Create an object recorded under `key` in `rt.creates`; forget it on failure so the retry creates again."""
    try:
        await rt.kube.create(obj)
    except Exception:
        rt.creates.observe(key)
        raise
