"""kopf wiring: indexes feed the caches, `@kopf.on.event` handlers enqueue the parent's reconcile; pods come
from the operator's own watch instead (`controllers.podwatch`, issue #13).

Design for scale and zero steady-state writes (kopf.md §1):
* standalone (no peering objects, no keep-alive PATCHes);
* no change-detecting handlers (no `last-handled-configuration` annotation), no timers or daemons (no
  finalizers, no per-object tasks), no handler return values (no `status.<handler>` writes);
* server-side label selectors on pods and services (`managed-by=grove-operator`), so unrelated pods are
  never listed, watched or held in memory;
* pods, most of the events, skip kopf's per-object machinery (`controllers.podwatch`);
* in-memory indexes instead of GET/LIST per reconcile; a debounced work queue keyed by parent object.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import io
import logging
import signal
import time
from typing import Any

import kopf

from controllers import cache as caches
from controllers import metrics, podwatch, schedulingbackend, serving
from controllers.client import Connection, Kube
from controllers.leader import LeaderElector
from controllers.queue_keys import PCLQ, PCS, PCSG, STATUS_ONLY
from controllers.reconcile import dispatch
from controllers.runtime import Options, Runtime
from controllers.workqueue import WorkQueue
from grove.api import constants as c
from grove.computedomain import controller as computedomain_controller
from grove.computedomain import model as cd_model
from grove.expansion.labels import MANAGED_BY_SELECTOR

log = logging.getLogger("grove.operator")

GROVE = ("grove.io", "v1alpha1")
PCS_RES = (*GROVE, "podcliquesets")
PCSG_RES = (*GROVE, "podcliquescalinggroups")
PCLQ_RES = (*GROVE, "podcliques")
GANG_RES = ("scheduler.grove.io", "v1alpha1", "podgangs")
CLAIM_RES = ("resource.k8s.io", "v1", "resourceclaims")
TEMPLATE_RES = ("resource.k8s.io", "v1", "resourceclaimtemplates")
DOMAIN_RES = (cd_model.GROUP, cd_model.VERSION, cd_model.PLURAL)
HPA_RES = ("autoscaling", "v2", "horizontalpodautoscalers")
MANAGED = {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE}

# Debounce per key kind: coalesce bursts of child events into one reconcile of the parent.
DELAYS = {PCS: 0.25, PCSG: 0.1, PCLQ: 0.1}


def build_registry(rt: Runtime) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs) or kopf.login_with_service_account(**kwargs)

    def indexer(resource: tuple[str, ...], fn: Any, id_: str, **filters: Any) -> None:
        async def handler(body: kopf.Body, **_: Any) -> Any:
            return fn(body)

        kopf.index(*resource, id=id_, registry=registry, **filters)(handler)

    indexer(PCS_RES, caches.index_pcs, caches.PCS)
    indexer(PCSG_RES, caches.index_pcsg, caches.PCSG)
    indexer(PCLQ_RES, caches.index_pclq, caches.PCLQ)
    indexer(GANG_RES, caches.index_gang, caches.GANGS)
    indexer(("v1", "services"), caches.index_service, caches.SERVICES)
    # Claim objects (no server-side selector: the ComputeDomain controller below needs every claim, and kopf
    # opens one watch per resource; an external resourceSharing template need not carry our labels).
    indexer(CLAIM_RES, caches.index_claim, caches.CLAIMS)
    indexer(TEMPLATE_RES, caches.index_claim_template, caches.TEMPLATES)
    indexer(DOMAIN_RES, caches.index_claim, caches.DOMAINS)
    indexer(HPA_RES, caches.index_hpa, caches.HPAS, labels=MANAGED)

    def meta_of(body: kopf.Body, type_: str | None = None) -> tuple[str, str, dict[str, str]]:
        meta = body.get("metadata", {})
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        rt.observed(body.get("kind", ""), ns, name, meta.get("uid"), type_ == "DELETED")
        return ns, name, dict(meta.get("labels") or {})

    def replica(labels: dict[str, str]) -> int | None:
        value = labels.get(c.LABEL_PCS_REPLICA_INDEX, "")
        return int(value) if value.isdigit() else None

    def replica_hint(body: kopf.Body, type_: str | None, labels: dict[str, str]) -> Any:
        """The PCS hint of a PodClique or PCSG event: its replica index, or `(status, index)` when only its
        status changed (its pods moved on): that matters to the replica's gang statuses and gang termination,
        not to the objects the replica's spec makes (issue #13)."""
        index = replica(labels)
        return (STATUS_ONLY, index) if index is not None and rt.status_only(body, type_) else index

    @kopf.on.event(*PCS_RES, registry=registry)
    async def on_pcs(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        rt.cache.bind(kwargs)
        ns, name, _ = meta_of(body, type)
        rt.enqueue(PCS, ns, name, STATUS_ONLY if rt.status_only(body, type) else None)

    @kopf.on.event(*PCSG_RES, registry=registry)
    async def on_pcsg(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        rt.cache.bind(kwargs)
        ns, name, labels = meta_of(body, type)
        rt.enqueue(PCSG, ns, name)
        rt.enqueue(PCS, ns, labels.get(c.LABEL_PART_OF, ""), replica_hint(body, type, labels))

    @kopf.on.event(*PCLQ_RES, registry=registry)
    async def on_pclq(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        rt.cache.bind(kwargs)
        ns, name, labels = meta_of(body, type)
        rt.enqueue(PCLQ, ns, name)
        owner = next((r for r in body.get("metadata", {}).get("ownerReferences") or [] if r.get("controller")), None)
        if owner and owner.get("kind") == c.KIND_PODCLIQUESCALINGGROUP:
            rt.enqueue(PCSG, ns, owner.get("name", ""))
        rt.enqueue(PCS, ns, labels.get(c.LABEL_PART_OF, ""), replica_hint(body, type, labels))
        if c.LABEL_BASE_PODGANG not in labels:
            # A base-gang clique's scheduledReplicas gates the scaled gangs' pods (Grove §2.7).
            for scaled in rt.cache.scaled_pclqs_of_base(ns, labels.get(c.LABEL_PODGANG, "")):
                rt.enqueue(PCLQ, ns, scaled)

    @kopf.on.event(*GANG_RES, registry=registry)
    async def on_gang(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        rt.cache.bind(kwargs)
        ns, _, labels = meta_of(body, type)
        for group in body.get("spec", {}).get("podgroups") or []:
            rt.enqueue(PCLQ, ns, group.get("name", ""))
        if type in (None, "DELETED"):
            rt.enqueue(PCS, ns, labels.get(c.LABEL_PART_OF, ""), replica(labels))

    @kopf.on.event("v1", "services", registry=registry, labels=MANAGED)
    async def on_service(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        rt.cache.bind(kwargs)
        ns, _, labels = meta_of(body, type)
        if type != "ADDED":
            rt.enqueue(PCS, ns, labels.get(c.LABEL_PART_OF, ""), replica(labels))

    @kopf.on.event(*HPA_RES, registry=registry, labels=MANAGED)
    async def on_hpa(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        rt.cache.bind(kwargs)
        ns, _, labels = meta_of(body, type)
        if type != "ADDED" and labels.get(c.LABEL_COMPONENT) == c.COMPONENT_HPA:
            rt.enqueue(PCS, ns, labels.get(c.LABEL_PART_OF, ""), replica(labels))

    async def on_claim_object(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        """A claim object of a PCS deleted (scale-in, or by hand): its replica's claims are computed again on
        the next pass (re-created if still wanted). A template event re-enqueues PCSs that use it as an
        external resourceSharing template."""
        rt.cache.bind(kwargs)
        meta = body.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if body.get("kind") == "ResourceClaimTemplate":
            for user_ns, user in sorted(rt.external_users.get((ns, name), ())):
                rt.enqueue(PCS, user_ns, user)
        if type != "DELETED":
            return
        labels = dict(meta.get("labels") or {})
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
        if (
            owner is None
            or owner.get("kind") != c.KIND_PODCLIQUESET
            or labels.get(c.LABEL_PART_OF) != owner.get("name")
        ):
            return
        index = replica(labels)
        if index is not None:
            rt.claims_done.pop((owner.get("uid", ""), index), None)
            rt.enqueue(PCS, ns, owner.get("name", ""), index)

    for resource in (CLAIM_RES, TEMPLATE_RES, DOMAIN_RES):
        kopf.on.event(*resource, id=f"grove_{resource[2]}", registry=registry)(on_claim_object)

    # The ComputeDomain controller (channel templates, status) runs in the same process and registry. Its status
    # follows the channel claims (all of them: no selector on claims), not pods, so it covers any pod (issue 14).
    computedomain_controller.register(registry, with_login=False)
    return registry


def pod_observer(rt: Runtime) -> podwatch.Observer:
    """What a pod event (from `podwatch.PodWatch`) sets off: its PodClique's reconcile and its dependents'."""

    def observe(ns: str, name: str, uid: str, cliques: tuple[str, ...], deleted: bool) -> None:
        rt.observed("Pod", ns, name, uid, deleted)
        for pclq in cliques:
            rt.enqueue(PCLQ, ns, pclq)  # PodGangs list pods by deterministic name: no PCS work per pod event
            for dependent in rt.cache.dependents_of(ns, pclq):  # startup order: parents' readiness
                rt.enqueue(PCLQ, ns, dependent)

    return observe


class NoEssenceStorage(kopf.DiffBaseStorage):
    """A diff-base storage that builds no essence and stores nothing.

    Why: kopf builds every object's "essence" (a deep copy of the body) on every event to detect changes for
    change handlers, even when there are none. This operator has no change handlers, so the copy is pure cost;
    profiling 400 pods showed it as the largest single CPU item of the operator (about a quarter of it)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def build_settings(rt: Runtime) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.peering.standalone = True
    settings.persistence.diffbase_storage = NoEssenceStorage()
    settings.posting.enabled = False  # our own Events only (controllers/events.py)
    settings.watching.label_selectors["v1", "services"] = MANAGED_BY_SELECTOR
    # kopf keeps a worker task (and its queue) per object until it has been idle this long (default 5 s): during
    # a deploy that is one per pod, PodClique and PodGang at once. Objects here get events seconds apart, so a
    # short idle costs little CPU and keeps far fewer workers alive (issue #13: peak RSS).
    settings.queueing.idle_timeout = 0.5
    settings.watching.server_timeout = 600
    settings.networking.request_timeout = 120
    settings.execution.max_workers = 4  # handlers are sync and trivial; keep the thread pool small
    return settings


# asyncio gives every TLS connection a 256 KiB read buffer (`SSLProtocol.max_size`, filled at once), and the
# operator holds one connection per concurrent write plus one per watch: about 7 MiB of RSS at the defaults
# for buffers that API answers and watch events rarely fill (issue #13). Reads of larger answers take more
# calls of this size instead.
SSL_READ_BUFFER = 32 * 1024


async def run(options: Options, stop: asyncio.Event | None = None) -> None:
    """Run the operator until cancelled (or `stop` is set). With leader election, wait for the Lease first and
    write nothing before it is held; losing it stops the operator (raises LeaseLost: exit and restart)."""
    asyncio.sslproto.SSLProtocol.max_size = SSL_READ_BUFFER
    kube = Kube(Connection.from_kubeconfig(), concurrency=options.concurrency, qps=options.qps, burst=options.burst)
    rt = Runtime(kube=kube, options=options)
    if options.gang_scheduling == "off":
        log.info("gang scheduling: off (--gang-scheduling=off), pods are scheduled one by one")
    else:
        rt.backends.workload_api = await schedulingbackend.discover(kube)  # issue #9: once, at start
    stop_flag = stop or asyncio.Event()
    kopf_ready = asyncio.Event()
    elector = (
        LeaderElector(
            kube,
            options.lease_namespace,
            options.lease_name,
            options.identity,
            lease_duration=options.lease_duration,
            renew_deadline=options.renew_deadline,
            retry_period=options.retry_period,
        )
        if options.leader_elect
        else None
    )
    pods = podwatch.PodWatch(kube.connection, MANAGED_BY_SELECTOR, options.namespaces, pod_observer(rt))
    rt.cache.indexes[caches.PODS] = pods.index
    collector = metrics.StateCollector(lambda: rt.cache.indexes, lambda: rt.queue)
    metrics.REGISTRY.register(collector)
    readiness = serving.Readiness(
        leading=lambda: elector is None or elector.leading,
        caches_ready=lambda: kopf_ready.is_set() and pods.synced.is_set(),
        contacted=lambda: elector.last_contact if elector else time.monotonic(),
        staleness=options.lease_duration,
    )
    runners = await serving.start(readiness, health_port=options.health_port, metrics_port=options.metrics_port)
    holder: asyncio.Task[None] | None = None
    watching: list[asyncio.Task[None]] = []
    try:
        if elector is not None and not await elector.acquire(stop_flag):
            return
        metrics.LEADER.set(1)
        handle = metrics.instrument(lambda key, hints: dispatch(rt, key, hints))
        rt.queue = WorkQueue(handle, workers=options.workers, delays=DELAYS)
        watching.append(asyncio.create_task(pods.run(), name="grove-pod-watch"))
        watching.append(asyncio.create_task(start_when_filled(rt.queue, rt.cache, pods), name="grove-queue-start"))
        watching[0].add_done_callback(lambda _: stop_flag.set())  # a pod cache that stopped following: exit
        with contextlib.suppress(NotImplementedError, RuntimeError):  # a stuck operator can say where (issue 8)
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks, rt)
        if elector is not None:
            holder = asyncio.create_task(elector.hold(), name="grove-lease")
            holder.add_done_callback(lambda _: stop_flag.set())
        kwargs: dict[str, Any] = {"namespaces": options.namespaces} if options.namespaces else {"clusterwide": True}
        await kopf.operator(
            registry=build_registry(rt),
            settings=build_settings(rt),
            standalone=True,
            stop_flag=stop_flag,
            ready_flag=kopf_ready,
            **kwargs,
        )
        for task in (holder, watching[0]):
            if task is not None and task.done() and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]  # LeaseLost, a broken pod watch: exit non-zero
    finally:
        metrics.LEADER.set(0)
        if holder is not None:
            holder.cancel()
        for task in watching:
            task.cancel()
        await asyncio.gather(*watching, return_exceptions=True)
        if rt.queue is not None:
            await rt.queue.stop()
        for task in list(rt.tasks):  # handed-off status writes: the next leader recomputes them
            task.cancel()
        if elector is not None and (holder is None or not holder.done() or holder.cancelled()):
            await elector.release()
        await serving.stop(runners)
        metrics.REGISTRY.unregister(collector)
        await kube.close()
        log.info("writes by verb: %s", dict(kube.writes))


async def start_when_filled(queue: WorkQueue, cache: caches.Cache, pods: podwatch.PodWatch) -> None:
    """Start the reconciles once kopf's indexes and the pod watch's first LIST are in: until then the queue
    only gathers keys (a reconcile on a half-filled cache would re-create what exists)."""
    await cache.bound.wait()
    await pods.synced.wait()
    queue.start()


def dump_tasks(rt: Runtime) -> None:
    """SIGUSR1: log every asyncio task's stack and the work queue's state (what a stuck operator waits on)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        out.write(f"--- {task.get_name()}\n")
        task.print_stack(limit=12, file=out)
    queue = rt.queue
    if queue is not None:
        out.write(f"queue: running={sorted(queue.running)[:20]} scheduled={len(queue.scheduled)} ")
        semaphore = rt.kube.semaphore
        out.write(f"queued={queue.queue.qsize()} semaphore={semaphore.value}/{len(semaphore.waiters)}\n")
    log.warning("task dump:\n%s", out.getvalue())


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not verbose:
        # kopf logs every handler invocation at INFO ("Handler ... succeeded"): noise at 1000s of pods.
        logging.getLogger("kopf").setLevel(logging.WARNING)
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    with contextlib.suppress(Exception):
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
