"""Scale benchmark: Grove's ScaleTest_1000 geometry on the real local control plane.

500 PodCliqueSet replicas x 1 clique `expert-worker` x 2 pods (minAvailable 2): 1000 pods, 500 PodCliques,
500 PodGangs, 500 Services, on 100 KWOK nodes. Measures, for the operator (`grove operator` as a subprocess):
apply -> all pods created -> all pods Ready -> PCS availableReplicas; per pod the first time a watch sees it
created, without Grove's gate, bound and Ready (p50 and p100 of each); settling; 60 s of steady state; scale to
half; delete. Operator peak RSS and CPU seconds (psutil), API writes from the API server's /metrics
(`apiserver_request_total`, POST/PUT/PATCH/DELETE/APPLY by resource, diffed per phase).

Then the floor: the same objects created by a plain bulk async client at full concurrency (no operator, pods
ungated), the same milestones, and the ratio operator/floor of each milestone's p100 (same run). Prints a table
and keeps every run, by label, in bench/results/scale.json.

    .venv/bin/python bench/scale.py                 # starts its own DevCluster with 100 KWOK nodes
    .venv/bin/python bench/scale.py --scale 5 --label 10x   # issue #13's "10x": 5000 pods on 500 KWOK nodes
    .venv/bin/python bench/scale.py --pcs 100 --template-kib 16   # many PodCliqueSets, large pod templates
    .venv/bin/python bench/scale.py --kubeconfig K  # an already running cluster (e.g. the sandbox)
    .venv/bin/python bench/scale.py --replicas 50   # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import shlex
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grove.api import constants as c  # noqa: E402
from grove.devcluster.processes import free_port  # noqa: E402
from grove.expansion import graph  # noqa: E402
from grove.expansion import spec as specs  # noqa: E402
from grove.expansion import workload as gang_objects  # noqa: E402

NS = "grove-bench"
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
METRIC = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$")
# What the operator writes (Events are left out: the scheduler posts one per pod).
# A floor client named `<client>+gang` also creates the kube-scheduler Workload API objects (issue #9).
GANG_SUFFIX = "+gang"
OPERATOR_RESOURCES = {"podcliquesets", "podcliques", "podcliquescalinggroups", "podgangs", "services"}


def workload(replicas: int, name: str = "scale-test", template_kib: int = 0) -> dict[str, Any]:
    """Grove's scale-test-1000.yaml shape (one standalone clique, 2 pods, minAvailable 2). `template_kib` pads the
    pod template with environment variables (large templates: what the operator's caches hold per object)."""
    pcs = {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "template": {
                "cliques": [
                    {
                        "name": "expert-worker",
                        "spec": {
                            "roleName": "expert",
                            "replicas": 2,
                            "minAvailable": 2,
                            "podSpec": {
                                "schedulerName": "default-scheduler",
                                "containers": [
                                    {
                                        "name": "worker",
                                        "image": "nginx:alpine-slim",
                                        "resources": {"requests": {"memory": "1Mi"}},
                                    }
                                ],
                            },
                        },
                    }
                ]
            },
        },
    }
    if template_kib:
        env = [{"name": f"PAD_{k}", "value": "x" * 1000} for k in range(template_kib)]
        pcs["spec"]["template"]["cliques"][0]["spec"]["podSpec"]["containers"][0]["env"] = env
    return pcs


def workloads(args: Any) -> list[dict[str, Any]]:
    """`--pcs` PodCliqueSets sharing `--replicas` between them (many small PCSs: per-object overheads)."""
    per, extra = divmod(args.replicas, args.pcs)
    names = ["scale-test"] if args.pcs == 1 else [f"scale-test-{k}" for k in range(args.pcs)]
    return [workload(per + (k < extra), name, args.template_kib) for k, name in enumerate(names)]


# ----------------------------------------------------------------------------------------------- helpers


class Kubectl:
    def __init__(self, kubeconfig: str) -> None:
        self.kubeconfig = kubeconfig
        self.bin = str(ROOT / ".cache/bin/kubectl")

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> str:
        result = subprocess.run(
            [self.bin, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result.stdout


API: Any = None  # the kubernetes ApiClient (set in main); cheaper than spawning kubectl in polling loops
CONN: Any = None  # controllers.client.Connection for raw GETs (/metrics)


def write_metrics(kubectl: Kubectl) -> Counter[tuple[str, str]]:
    """apiserver_request_total for write verbs, summed by (verb, resource[/subresource])."""
    out: Counter[tuple[str, str]] = Counter()
    import urllib.request

    request = urllib.request.Request(CONN.server + "/metrics", headers=CONN.headers)
    ctx = CONN.ssl_context if isinstance(CONN.ssl_context, ssl.SSLContext) else None
    with urllib.request.urlopen(request, context=ctx, timeout=30) as response:
        text = response.read().decode()
    for line in text.splitlines():
        match = METRIC.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        verb = labels.get("verb", "")
        if verb not in WRITE_VERBS:
            continue
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        out[(verb, resource)] += int(float(match.group(2)))
    return out


def diff_writes(before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]) -> dict[str, int]:
    delta = {f"{v} {r}": after[(v, r)] - before.get((v, r), 0) for (v, r) in after}
    return {k: n for k, n in sorted(delta.items()) if n}


def operator_writes(delta: dict[str, int]) -> int:
    """Writes the operator makes (the other writers are the scheduler's bindings, KWOK's pod/node status,
    leases, and the garbage collector's deletes)."""
    total = 0
    for key, n in delta.items():
        verb, resource = key.split(" ", 1)
        base, _, sub = resource.partition("/")
        if base in OPERATOR_RESOURCES or (base == "pods" and sub == "" and verb in ("POST", "PATCH")):
            total += n
    return total


class PodWatch:
    """Pods of the namespace from a watch, in a thread: for every pod the time (monotonic) it was first seen
    created, without Grove's scheduling gate, schedulable, bound to a node, and Ready. Plain JSON (no typed
    models), so the watcher costs little CPU on a loaded machine.

    Schedulable: ungated and, for a pod of a kube-scheduler PodGroup (`spec.schedulingGroup`, issue #9), its
    PodGroup seen too (a second watch): the scheduler holds such a pod until its PodGroup exists, so this is when
    the scheduler can first take it."""

    PHASES = ("created", "ungated", "schedulable", "bound", "ready")

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.pods: dict[str, bool] = {}
        self.seen: dict[str, dict[str, float]] = {}
        self.pod_groups: dict[str, str] = {}  # pod -> its PodGroup
        self.groups_seen: dict[str, float] = {}  # PodGroup -> first seen
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(self._list_pods, self._observe, self.pods.clear), daemon=True),
            threading.Thread(target=self._run, args=(self._list_groups, self._observe_group), daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _list_pods(self, **kwargs: Any) -> Any:
        return self.core.list_namespaced_pod(NS, **kwargs)

    def _list_groups(self, **kwargs: Any) -> Any:
        group, version = gang_objects.BETA.split("/")
        return self.custom.list_namespaced_custom_object(group, version, NS, "podgroups", **kwargs)

    def _observe_group(self, group: dict[str, Any], deleted: bool) -> None:
        name = (group.get("metadata") or {}).get("name", "")
        if deleted:
            self.groups_seen.pop(name, None)
        else:
            self.groups_seen.setdefault(name, time.monotonic())

    def _observe(self, pod: dict[str, Any], deleted: bool) -> None:
        meta = pod.get("metadata") or {}
        name = meta.get("name", "")
        if deleted or meta.get("deletionTimestamp"):
            self.pods.pop(name, None)
            return
        now = time.monotonic()
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        ready = any(
            cond.get("type") == "Ready" and cond.get("status") == "True" for cond in status.get("conditions") or []
        )
        self.pods[name] = ready
        stamps = self.seen.setdefault(name, {})
        stamps.setdefault("created", now)
        if not any(g.get("name") == c.SCHEDULING_GATE for g in spec.get("schedulingGates") or []):
            stamps.setdefault("ungated", now)
        group = (spec.get("schedulingGroup") or {}).get("podGroupName")
        if group:
            self.pod_groups[name] = group
        if spec.get("nodeName"):
            stamps.setdefault("bound", now)
        if ready:
            stamps.setdefault("ready", now)

    def _run(self, list_fn: Any, observe: Any, relisted: Any = None) -> None:
        """List then watch, again after any error; `relisted` runs before a listing is observed."""
        from kubernetes import watch

        while not self.stop.is_set():
            try:
                response = list_fn(_preload_content=False)
                listing = json.loads(response.data)
                with self.lock:
                    if relisted is not None:
                        relisted()
                    for item in listing.get("items") or []:
                        observe(item, False)
                w = watch.Watch()
                for event in w.stream(
                    list_fn,
                    resource_version=listing["metadata"]["resourceVersion"],
                    timeout_seconds=60,
                    deserialize=False,
                ):
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        with self.lock:
                            observe(event["object"], event["type"] == "DELETED")
                    if self.stop.is_set():
                        return
            except Exception as error:
                if getattr(error, "status", None) == 404:
                    return  # no PodGroup API (no gang scheduling): every pod is schedulable once ungated
                time.sleep(0.2)

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.pods), sum(self.pods.values())

    def reset(self) -> None:
        """Forget first-seen times (the next phase measures from scratch)."""
        with self.lock:
            self.seen = {}

    def phases(self, t0: float) -> dict[str, dict[str, float]]:
        """p50 and p100 (seconds since t0) of each milestone over the pods seen since the last reset."""
        with self.lock:
            stamps = [dict(s) for s in self.seen.values()]
            for name, pod_stamps in zip(self.seen, stamps, strict=True):
                group = self.pod_groups.get(name)
                ungated, group_seen = pod_stamps.get("ungated"), self.groups_seen.get(group) if group else 0.0
                if ungated is not None and group_seen is not None:
                    pod_stamps["schedulable"] = max(ungated, group_seen)
        out: dict[str, dict[str, float]] = {}
        for phase in self.PHASES:
            times = sorted(s[phase] - t0 for s in stamps if phase in s)
            if times:
                out[phase] = {"p50": round(times[len(times) // 2], 2), "p100": round(times[-1], 2), "n": len(times)}
        return out


def operator_ready(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until(what: str, check: Any, timeout: float, every: float = 0.1) -> float:
    """Poll `check` every 100 ms; return the monotonic time it first held."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        if check():
            now = time.monotonic()
            print(f"  {what}: {now - start:.1f} s", file=sys.stderr, flush=True)
            return now
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


class Sampler:
    """Peak RSS and CPU seconds of a process tree (psutil), sampled every 100 ms."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak_rss = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        try:
            times = self.proc.cpu_times()
            return float(times.user + times.system)
        except psutil.Error:
            return float("nan")


def pcs_available(names: list[str]) -> int:
    from kubernetes import client

    total = 0
    for name in names:
        try:
            obj = client.CustomObjectsApi(API).get_namespaced_custom_object(
                "grove.io", "v1alpha1", NS, "podcliquesets", name
            )
        except client.ApiException:
            continue
        total += int((obj.get("status") or {}).get("availableReplicas") or 0)
    return total


# ------------------------------------------------------------------------------------------------ phases


def run_operator_phases(kubectl: Kubectl, api_client: Any, kubeconfig: str, args: Any) -> dict[str, Any]:
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    log_path = Path(tempfile.gettempdir()) / f"grove-bench-operator-{os.getpid()}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    health_port = free_port()
    proc = subprocess.Popen(
        [
            *shlex.split(args.operator_cmd),
            "--concurrency",
            str(args.concurrency),
            "--health-port",
            str(health_port),
            *args.operator_args,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    sampler = Sampler(proc.pid)
    watch = PodWatch(api_client)
    results: dict[str, Any] = {"operator_log": str(log_path)}
    pcss = workloads(args)
    names = [p["metadata"]["name"] for p in pcss]
    replicas = sum(int(p["spec"]["replicas"]) for p in pcss)
    pods_total = replicas * 2
    try:
        # Apply to an operator that is up, as a user would: /readyz answers once kopf has started and the pod
        # watch's first LIST is in; kopf's own LISTs follow within milliseconds (the CRDs' storage is ready).
        wait_until("operator ready", lambda: operator_ready(health_port), 120)
        time.sleep(1)
        results["operator_idle_rss_mib"] = round(sampler.peak_rss / 2**20, 1)
        cpu0 = sampler.cpu_seconds()
        m0 = write_metrics(kubectl)
        t0 = time.monotonic()
        if len(pcss) == 1:
            kubectl("apply", "-f", "-", input=json.dumps(pcss[0]))
        else:
            # kubectl applies a List one object at a time (a GET and a POST each): under the operator's load the
            # 100th PodCliqueSet existed only 27 s after the first. All at once, as the floor creates its objects.
            asyncio.run(bulk_create(pcss, args.floor_concurrency, kubeconfig, "aiohttp"))
        t_applied = time.monotonic()
        t_created = wait_until("pods created", lambda: watch.counts()[0] >= pods_total, args.timeout)
        t_ready = wait_until("pods ready", lambda: watch.counts()[1] >= pods_total, args.timeout)
        t_avail = wait_until("pcs available", lambda: pcs_available(names) >= replicas, args.timeout, every=0.25)
        m1 = write_metrics(kubectl)
        cpu1 = sampler.cpu_seconds()
        deploy = diff_writes(m0, m1)
        results["deploy"] = {
            "applied_s": round(t_applied - t0, 2),
            "pods_created_s": round(t_created - t0, 2),
            "pods_ready_s": round(t_ready - t0, 2),
            "pcs_available_s": round(t_avail - t0, 2),
            "phases": watch.phases(t0),
            "cpu_s": round(cpu1 - cpu0, 2),
            "operator_writes": operator_writes(deploy),
            "writes": deploy,
        }
        # Settle: wait for the operator to catch up (status writes trail the pods) until a 5 s window has no
        # operator write at all; then measure the steady state.
        t_settle = time.monotonic()
        while time.monotonic() - t_settle < 180:
            before = write_metrics(kubectl)
            time.sleep(5)
            if operator_writes(diff_writes(before, write_metrics(kubectl))) == 0:
                break
        results["deploy"]["settled_s"] = round(time.monotonic() - t0, 2)
        results["deploy"]["writes_until_settled"] = diff_writes(m0, write_metrics(kubectl))
        m2 = write_metrics(kubectl)
        cpu2 = sampler.cpu_seconds()
        time.sleep(args.steady)
        m3 = write_metrics(kubectl)
        steady = diff_writes(m2, m3)
        results["steady"] = {
            "seconds": args.steady,
            "operator_writes": operator_writes(steady),
            "cpu_s": round(sampler.cpu_seconds() - cpu2, 2),
            "writes": steady,
        }
        # Scale every PCS to half its replicas (pods at target: the PodWatch sees exactly that many pods).
        halves = {p["metadata"]["name"]: int(p["spec"]["replicas"]) // 2 for p in pcss}
        m4 = write_metrics(kubectl)
        t4 = time.monotonic()
        for name, half in halves.items():
            kubectl("scale", "pcs", name, "-n", NS, f"--replicas={half}")
        target = 2 * sum(halves.values())
        t_scaled = wait_until("scale-in", lambda: watch.counts()[0] == target, args.timeout)
        m5 = write_metrics(kubectl)
        results["scale_in"] = {
            "from": replicas,
            "to": sum(halves.values()),
            "pods_at_target_s": round(t_scaled - t4, 2),
            "operator_writes": operator_writes(diff_writes(m4, m5)),
        }
        # Delete: API delete latency and time until every pod is gone (GC cascade, no finalizers).
        t6 = time.monotonic()
        kubectl("delete", "pcs", "--all", "-n", NS, "--wait=false")
        t_api = time.monotonic()
        t_gone = wait_until("pods deleted", lambda: watch.counts()[0] == 0, args.timeout)
        results["delete"] = {"api_s": round(t_api - t6, 2), "all_pods_gone_s": round(t_gone - t6, 2)}
        leftovers = kubectl("get", "pclq,pcsg,pg,svc,pods", "-n", NS, "-o", "name", check=False).split()
        wait_until(
            "children gone",
            lambda: not kubectl("get", "pclq,pcsg,pg,svc,pods", "-n", NS, "-o", "name", check=False).split(),
            120,
        )
        results["delete"]["leftovers_right_after_pods_gone"] = len(leftovers)
        results["operator"] = {
            "peak_rss_mib": round(sampler.peak_rss / 2**20, 1),
            "cpu_s_total": round(sampler.cpu_seconds(), 2),
        }
    finally:
        watch.stop.set()
        sampler.stop.set()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return results


def floor_objects(pcss: list[dict[str, Any]], uids: dict[str, str], gang: bool = False) -> list[dict[str, Any]]:
    """The same objects (Services, PodCliques, PodGangs, Pods), as the operator would end with: pods ungated,
    owner references kept only to the PodCliqueSet (pods' owners do not exist yet in a one-shot bulk create).

    `gang`: the floor of gang scheduling (issue #9) - first each gang's kube-scheduler Workload API objects
    (Workload, CompositePodGroup, PodGroups, owned by the PodCliqueSet here), then pods that join their
    PodGroup, so the scheduler does the same all-or-nothing work as under the operator."""
    expanded = []
    for spec in pcss:
        spec = copy.deepcopy(spec)
        spec["metadata"]["uid"] = uids[spec["metadata"]["name"]]
        expanded.append(graph.expand(spec))
    out = []
    if gang:
        for g in expanded:
            model = specs.load(g.pcs)
            for podgang_obj in g.podgangs:
                index = int(podgang_obj["metadata"]["labels"][c.LABEL_PCS_REPLICA_INDEX])
                with_uid = copy.deepcopy(podgang_obj)
                with_uid["metadata"]["uid"] = "floor"
                for obj in gang_objects.scheduling_objects(with_uid, gang_objects.template_names(model, index, {})):
                    obj["metadata"]["ownerReferences"] = podgang_obj["metadata"]["ownerReferences"]
                    out.append(obj)
    # Pods first (then PodCliques, PodGangs, Services): the same order the operator's priorities give, so the
    # "pods created" milestones compare like with like.
    for kind in ("pods", "podcliques", "podgangs", "services"):
        for obj in (o for g in expanded for o in getattr(g, kind)):
            obj = copy.deepcopy(obj)
            refs = obj["metadata"].get("ownerReferences") or []
            obj["metadata"]["ownerReferences"] = [r for r in refs if r["kind"] == c.KIND_PODCLIQUESET]
            if obj["kind"] == "Pod":
                obj["spec"].pop("schedulingGates", None)
                obj["metadata"].pop("ownerReferences")
                obj["metadata"]["labels"]["grove-bench/floor"] = "true"
                if gang:
                    clique = obj["metadata"]["labels"][c.LABEL_PODCLIQUE]
                    obj["spec"]["schedulingGroup"] = gang_objects.scheduling_group(clique)
            out.append(obj)
    return out


async def bulk_create(
    objects: list[dict[str, Any]], concurrency: int, kubeconfig: str, client: str
) -> dict[str, float]:
    """Create everything at once with a bounded async client; returns per-kind completion times (s)."""
    os.environ["KUBECONFIG"] = kubeconfig
    done: dict[str, float] = {}
    t0 = time.monotonic()
    if client == "aiohttp":
        from controllers.client import Connection, Kube

        kube = Kube(Connection.from_kubeconfig(kubeconfig), concurrency=concurrency)

        async def create(obj: dict[str, Any]) -> None:
            await kube.create(obj)
            done[obj["kind"]] = time.monotonic() - t0

        try:
            await asyncio.gather(*(create(o) for o in objects))
        finally:
            await kube.close()
    else:  # kubernetes.aio (official client >= 36.0.1)
        from kubernetes.aio import client as kclient  # type: ignore[import-not-found]
        from kubernetes.aio import config as kconfig  # type: ignore[import-not-found]

        loaded = kconfig.load_kube_config(config_file=kubeconfig)
        if asyncio.iscoroutine(loaded):
            await loaded
        async with kclient.ApiClient() as api:
            core = kclient.CoreV1Api(api)
            custom = kclient.CustomObjectsApi(api)
            sem = asyncio.Semaphore(concurrency)

            async def create_k(obj: dict[str, Any]) -> None:
                async with sem:
                    ns = obj["metadata"]["namespace"]
                    if obj["kind"] == "Pod":
                        await core.create_namespaced_pod(ns, obj)
                    elif obj["kind"] == "Service":
                        await core.create_namespaced_service(ns, obj)
                    else:
                        group, version = obj["apiVersion"].split("/")
                        plural = {"PodClique": "podcliques", "PodGang": "podgangs"}[obj["kind"]]
                        await custom.create_namespaced_custom_object(group, version, ns, plural, obj)
                done[obj["kind"]] = time.monotonic() - t0

            await asyncio.gather(*(create_k(o) for o in objects))
    done["all"] = time.monotonic() - t0
    return done


def run_floor(kubectl: Kubectl, api_client: Any, kubeconfig: str, args: Any, client: str) -> dict[str, Any]:
    """No operator running: create the PCSs (as owners), then all objects at full concurrency."""
    pcss = workloads(args)
    owners = []
    for pcs in pcss:
        owner = copy.deepcopy(pcs)
        owner["spec"]["replicas"] = 0  # an owner only; nothing reconciles it
        owners.append(owner)
    applied = json.loads(
        kubectl(
            "apply", "-f", "-", "-o", "json", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": owners})
        )
    )
    uids = {o["metadata"]["name"]: o["metadata"]["uid"] for o in applied.get("items") or [applied]}
    gang = client.endswith(GANG_SUFFIX)
    client = client.removesuffix(GANG_SUFFIX)
    objects = floor_objects(pcss, uids, gang)
    pods_total = sum(o["kind"] == "Pod" for o in objects)
    watch = PodWatch(api_client)
    time.sleep(1)
    m0 = write_metrics(kubectl)
    t0 = time.monotonic()
    times = asyncio.run(bulk_create(objects, args.floor_concurrency, kubeconfig, client))
    t_created = time.monotonic()
    t_ready = wait_until("floor pods ready", lambda: watch.counts()[1] >= pods_total, args.timeout)
    m1 = write_metrics(kubectl)
    watch.stop.set()
    result = {
        "client": client + (GANG_SUFFIX if gang else ""),
        "objects": len(objects),
        "all_objects_created_s": round(t_created - t0, 2),
        "pods_created_s": round(times.get("Pod", float("nan")), 2),
        "pods_ready_s": round(t_ready - t0, 2),
        "phases": watch.phases(t0),
        "writes": sum(diff_writes(m0, m1).values()),
    }
    try:
        clean_floor(kubectl)
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as error:
        # The figures are taken; a cleanup that overruns (5000 pods on a 2-core machine) must not lose them.
        result["cleanup_error"] = str(error)[:300]
        print(f"floor with {result['client']}: cleanup incomplete: {error}", file=sys.stderr)
    return result


def clean_floor(kubectl: Kubectl) -> None:
    kubectl("delete", "pcs", "--all", "-n", NS, "--wait=true", "--timeout=300s")
    # Floor pods have no owner (their PodCliques did not exist when they were created): delete explicitly.
    kubectl(
        "delete",
        "pods,podcliques,podgangs,services",
        "-n",
        NS,
        "-l",
        f"{c.LABEL_MANAGED_BY}={c.LABEL_MANAGED_BY_VALUE}",
        "--wait=false",
    )
    wait_until(
        "floor cleaned",
        lambda: not kubectl("get", "pods,pclq,pg,svc", "-n", NS, "-o", "name", check=False).split(),
        300,
    )


# ------------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", help="use a running cluster instead of starting a DevCluster")
    parser.add_argument("--replicas", type=int, default=500, help="PCS replicas in all (2 pods each)")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--scale", type=int, default=1, help="multiply --replicas and --nodes (5: 5000 pods)")
    parser.add_argument("--pcs", type=int, default=1, help="spread the replicas over this many PodCliqueSets")
    parser.add_argument("--template-kib", type=int, default=0, help="pad each pod template by this many KiB")
    parser.add_argument("--steady", type=float, default=60.0, help="steady-state window in seconds")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--concurrency", type=int, default=32, help="operator --concurrency (its default)")
    parser.add_argument("--floor-concurrency", type=int, default=64)
    parser.add_argument("--floor-clients", default="aiohttp,kubernetes.aio,aiohttp+gang")
    parser.add_argument("--operator-args", nargs="*", default=[])
    parser.add_argument(
        "--operator-cmd",
        default=f"{ROOT / '.venv/bin/grove'} operator",
        help="how to start the operator (e.g. under a profiler); its process is the one measured",
    )
    parser.add_argument("--output", default=str(ROOT / "bench/results/scale.json"))
    parser.add_argument("--label", help="key of this run in the output file (default from the geometry)")
    args = parser.parse_args()
    args.replicas *= args.scale
    args.nodes *= args.scale
    label = args.label or _default_label(args)

    cluster = None
    if args.kubeconfig:
        kubeconfig = args.kubeconfig
    else:
        from grove.devcluster import DevCluster

        workdir = tempfile.mkdtemp(prefix="grove-bench-")
        # On a saturated machine KWOK renews node leases late; the node controller would then mark pods NotReady
        # (and KWOK never makes them Ready again), which measures the host, not the operator.
        slow_nodes = {"kube-controller-manager": ["--node-monitor-grace-period=300s"]}
        cluster = DevCluster(workdir, initial_nodes=3, extra_args=slow_nodes).start()
        kubeconfig = str(cluster.kubeconfig)
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    api_client = client.ApiClient(cfg)
    global API, CONN
    API = api_client
    from controllers.client import Connection

    CONN = Connection.from_kubeconfig(kubeconfig)
    kubectl = Kubectl(kubeconfig)
    results: dict[str, Any] = {}
    try:
        from grove.devcluster import create_nodes

        create_nodes(api_client, args.nodes, "bench-node-", timeout=300)
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "api/crds"))
        wait_until(
            "CRDs established",
            lambda: (
                subprocess.run(
                    [
                        kubectl.bin,
                        f"--kubeconfig={kubeconfig}",
                        "wait",
                        "--for=condition=Established",
                        "crd",
                        "--all",
                        "--timeout=10s",
                    ],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            ),
            90,
        )
        # A CRD is Established before the API server can list it ("storage is (re)initializing", 429): an
        # operator started in between waits for its retry, and the first PodCliqueSet would wait with it.
        crds = ",".join(name.split("/", 1)[1] for name in kubectl("get", "crd", "-o", "name").split())
        wait_until(
            "CRDs listable",
            lambda: (
                subprocess.run(
                    [kubectl.bin, f"--kubeconfig={kubeconfig}", "get", crds, "-A"], capture_output=True, check=False
                ).returncode
                == 0
            ),
            90,
        )
        kubectl("create", "namespace", NS, check=False)
        wait_until("default SA", lambda: "default" in kubectl("get", "sa", "-n", NS, "-o", "name", check=False), 60)
        results = {
            "geometry": {
                "pcs": args.pcs,
                "pcs_replicas": args.replicas,
                "pods": args.replicas * 2,
                "nodes": args.nodes,
                "template_kib": args.template_kib,
            },
            "host": {
                "cpus": os.cpu_count(),
                "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                "load_avg_1m_at_start": round(os.getloadavg()[0], 1),
            },
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        results.update(run_operator_phases(kubectl, api_client, kubeconfig, args))
        save(args.output, label, results)  # partial results first
        results["floor"] = []
        for name in [n for n in args.floor_clients.split(",") if n]:
            try:
                results["floor"].append(run_floor(kubectl, api_client, kubeconfig, args, name))
            except Exception as error:  # one client failing must not lose the other figures
                print(f"floor with {name} failed: {error}", file=sys.stderr)
                kubectl("delete", "pcs", "--all", "-n", NS, "--wait=true", check=False)
        if results["floor"]:
            results["ratio"] = ratios(results)
        results["host"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 1)
    finally:
        if cluster is not None:
            cluster.stop()
    save(args.output, label, results)
    print_table(label, results)
    return 0


def _default_label(args: Any) -> str:
    label = f"{args.scale}x" if args.scale != 1 else "1x"
    if args.pcs != 1:
        label += f"-{args.pcs}pcs"
    if args.template_kib:
        label += f"-{args.template_kib}kib"
    return label


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    """Operator over floor, like with like: the watch's p100 of each milestone, against the best plain floor
    client for that milestone (the strictest comparison), and against the gang-scheduled floor if it ran (the
    same scheduler work as the operator's pods when gang scheduling is on)."""
    phases = r["deploy"]["phases"]
    out: dict[str, Any] = {}
    plain = [f for f in r["floor"] if not f["client"].endswith(GANG_SUFFIX)]
    gang = [f for f in r["floor"] if f["client"].endswith(GANG_SUFFIX)]
    for phase in ("created", "ready"):
        if phase not in phases:
            continue
        floors = [f for f in plain if phase in f["phases"]]
        if floors:
            best = min(floors, key=lambda f: f["phases"][phase]["p100"])
            out[f"pods_{phase}_vs_floor"] = round(phases[phase]["p100"] / best["phases"][phase]["p100"], 2)
            out[f"{phase}_floor_client"] = best["client"]
        for floor in (f for f in gang if phase in f["phases"]):
            out[f"pods_{phase}_vs_gang_floor"] = round(phases[phase]["p100"] / floor["phases"][phase]["p100"], 2)
    return out


def save(path: str, label: str, results: dict[str, Any]) -> None:
    """Keep every labelled run in one file (a new run replaces the one with its label)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        runs = json.loads(out.read_text())
    except (OSError, ValueError):
        runs = {}
    if "runs" not in runs:  # the older single-run layout
        runs = {"runs": {}}
    runs["runs"][label] = results
    out.write_text(json.dumps(runs, indent=2) + "\n")


def _phase_cell(phases: dict[str, Any], phase: str) -> str:
    p = phases.get(phase)
    return f"{p['p50']:>6} / {p['p100']:<6}" if p else "     - / -     "


def print_table(label: str, r: dict[str, Any]) -> None:
    d, s, sc, de, op = r["deploy"], r["steady"], r["scale_in"], r["delete"], r["operator"]
    print(f"ScaleTest {label}: {r['geometry']}")
    print("  milestone (s after apply, p50 / p100)   " + "   ".join(f"{p:<15}" for p in PodWatch.PHASES))
    rows = [("operator", d["phases"])] + [(f"floor ({f['client']})", f["phases"]) for f in r.get("floor", [])]
    for name, phases in rows:
        print(f"  {name:<39} " + "   ".join(_phase_cell(phases, p) for p in PodWatch.PHASES))
    kv = [
        ("kubectl apply returned / PCS available", f"{d.get('applied_s', '-')} s / {d['pcs_available_s']} s"),
        ("operator writes during deploy", str(d["operator_writes"])),
        ("writes during deploy by verb/resource", json.dumps(d["writes"])),
        (f"operator writes in {s['seconds']:.0f} s steady state", str(s["operator_writes"])),
        ("operator CPU deploy / steady / total", f"{d['cpu_s']} s / {s['cpu_s']} s / {op['cpu_s_total']} s"),
        ("operator peak RSS", f"{op['peak_rss_mib']} MiB (idle {r.get('operator_idle_rss_mib')} MiB)"),
        (f"scale {sc['from']} -> {sc['to']}: pods at target", f"{sc['pods_at_target_s']} s"),
        ("delete: API call / all pods gone", f"{de['api_s']} s / {de['all_pods_gone_s']} s"),
    ]
    for key, value in (r.get("ratio") or {}).items():
        kv.append((f"ratio {key}", str(value)))
    width = max(len(k) for k, _ in kv)
    for k, v in kv:
        print(f"  {k.ljust(width)}  {v}")


if __name__ == "__main__":
    sys.exit(main())
