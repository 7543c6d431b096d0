"""The operator (`grove operator` as a subprocess) against the real local control plane.

Every example reconciles to exactly the objects `grove render` predicts and (without DRA devices) to Ready;
`kubectl wait --for=condition=Ready` works; scaling at each level; deletion leaves nothing; startup order is
observable; invalid specs create nothing; a crash mid-expansion converges without duplicates.

Waits poll the API with generous deadlines; no assertion is about how long something took.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from grove.api import constants as c
from grove.devcluster.crds import crd_names, wait_established
from grove.expansion import graph

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
KINDS = "podcliques,podcliquescalinggroups,podgangs,services,pods"
KIND_OF = {
    "PodClique": "podclique",
    "PodCliqueScalingGroup": "podcliquescalinggroup",
    "PodGang": "podgang",
    "Service": "service",
    "Pod": "pod",
}


class Operator:
    """`grove operator` in a subprocess, restartable and killable (for crash tests)."""

    def __init__(self, kubeconfig: Path, log_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = open(self.log_dir / f"operator-{self.runs}.log", "wb")  # noqa: SIM115 - closed with the process
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "grove.cli", "operator"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, like a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def logs(self) -> str:
        """The last 4000 characters of each run's log (for failure messages)."""
        return "\n".join(text[-4000:] for text in self.full_logs())

    def full_logs(self) -> list[str]:
        return [p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log"))]


def install_crds(cluster: Any) -> None:
    """Apply api/crds and wait for each of them by name (issue 14: `kubectl wait ... crd --all` fails while any
    CRD in the cluster, ours or another test's, has no status yet)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "api/crds"))
    wait_established(cluster.api_client, crd_names([ROOT / "api/crds"]), timeout=90)


def running_operator(
    cluster: Any, tmp_path_factory: pytest.TempPathFactory, name: str, nodes: int = 0
) -> Iterator[Operator]:
    """A module's operator: our CRDs installed, `nodes` KWOK nodes named `<name>-node-<i>`, the operator process
    started; stopped after the module, with its log's tail printed."""
    install_crds(cluster)
    if nodes:
        cluster.create_nodes(nodes, f"{name}-node-")
    op = Operator(Path(cluster.kubeconfig), tmp_path_factory.mktemp(f"{name}-operator"))
    op.start()
    try:
        yield op
    finally:
        op.stop()
        print(op.logs()[-6000:])


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    yield from running_operator(cluster, tmp_path_factory, "op", nodes=6)  # room for 1000 pods (250 per node)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, op: Operator | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    detail = f"\noperator log:\n{op.logs()[-3000:]}" if op else ""
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}){detail}")


def load(path: Path, namespace: str) -> dict[str, Any]:
    doc = next(d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "PodCliqueSet")
    doc.setdefault("metadata", {})["namespace"] = namespace
    return dict(doc)


def expected_objects(pcs: dict[str, Any]) -> set[str]:
    g = graph.expand(pcs)
    objs = [*g.podcliques, *g.scaling_groups, *g.podgangs, *g.services, *g.pods]
    return {f"{KIND_OF[o['kind']]}/{o['metadata']['name']}" for o in objs}


def actual_objects(cluster: Any, namespace: str) -> set[str]:
    out = cluster.kubectl("get", KINDS, "-n", namespace, "-o", "json").stdout
    names = set()
    for item in json.loads(out)["items"]:
        if item["kind"] == "Service" and item["metadata"]["name"] == "kubernetes":
            continue
        if item["metadata"].get("deletionTimestamp"):
            continue
        names.add(f"{KIND_OF[item['kind']]}/{item['metadata']['name']}")
    return names


def apply(cluster: Any, pcs: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pcs))


def has_devices(pcs: dict[str, Any]) -> bool:
    template = pcs["spec"]["template"]
    return (
        bool(template.get("resourceSharing") or template.get("resourceClaimTemplates"))
        or any(clique["spec"].get("devices") or clique.get("resourceSharing") for clique in template["cliques"])
        or any(g.get("resourceSharing") for g in template.get("podCliqueScalingGroups") or [])
    )


def get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout))


def pods(cluster: Any, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", "pods", "-n", namespace, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return list(json.loads(cluster.kubectl(*args).stdout)["items"])


# ------------------------------------------------------------------------------------------------ examples


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_reconciles_to_expected_objects_and_ready(
    cluster: Any, namespace: str, operator: Operator, example: Path
) -> None:
    pcs = load(example, namespace)
    name = pcs["metadata"]["name"]
    expected = expected_objects(pcs)
    apply(cluster, pcs)
    wait_for(f"objects of {example.name}", lambda: actual_objects(cluster, namespace) == expected, op=operator)
    # Exactly the expected objects: nothing more shows up.
    assert actual_objects(cluster, namespace) == expected
    if not has_devices(pcs):  # pods with DRA claims need a DRA driver to become Ready
        cluster.kubectl("wait", "--for=condition=Ready", f"pcs/{name}", "-n", namespace, "--timeout=120s", timeout=130)
        status = get(cluster, namespace, "pcs", name)["status"]
        assert status["availableReplicas"] == pcs["spec"].get("replicas", 0)
        assert status["hpaPodSelector"] == f"{c.LABEL_MANAGED_BY}=grove-operator,{c.LABEL_PART_OF}={name}"
        assert status["observedGeneration"] == get(cluster, namespace, "pcs", name)["metadata"]["generation"]
        # Every pod is ungated and scheduled.
        for pod in pods(cluster, namespace):
            assert not pod["spec"].get("schedulingGates"), pod["metadata"]["name"]
    cluster.kubectl("delete", "pcs", name, "-n", namespace, "--wait=true", "--timeout=60s", timeout=70)
    wait_for("garbage collection", lambda: not actual_objects(cluster, namespace), op=operator)


# ------------------------------------------------------------------------------------------------- scaling


def test_scaling_each_level(cluster: Any, namespace: str, operator: Operator) -> None:
    pcs = load(ROOT / "examples/multi-node-disaggregated.yaml", namespace)
    name = pcs["metadata"]["name"]
    apply(cluster, pcs)
    cluster.kubectl("wait", "--for=condition=Ready", f"pcs/{name}", "-n", namespace, "--timeout=120s", timeout=130)

    # PCS level: whole replicas.
    cluster.kubectl("scale", "pcs", name, "-n", namespace, "--replicas=2")
    scaled = json.loads(json.dumps(pcs))
    scaled["spec"]["replicas"] = 2
    wait_for("pcs scale-out", lambda: actual_objects(cluster, namespace) == expected_objects(scaled), op=operator)

    # PCSG level: one more prefill unit in replica 1 (a scaled gang appears).
    pcsg = f"{name}-1-prefill"
    cluster.kubectl("scale", "pcsg", pcsg, "-n", namespace, "--replicas=3")
    wait_for(
        "pcsg scale-out",
        lambda: (
            f"podgang/{pcsg}-{3 - 1 - 1}" in actual_objects(cluster, namespace)
            and f"pod/{pcsg}-2-pworker-0" in actual_objects(cluster, namespace)
        ),
        op=operator,
    )

    # PCLQ level: more pods in a standalone clique; names carry the index.
    pclq = f"{name}-0-frontend"
    cluster.kubectl("scale", "pclq", pclq, "-n", namespace, "--replicas=3")
    wait_for("pclq scale-out", lambda: {f"pod/{pclq}-{k}" for k in range(3)} <= actual_objects(cluster, namespace))
    cluster.kubectl("wait", "--for=condition=Ready", f"pcs/{name}", "-n", namespace, "--timeout=120s", timeout=130)

    # Scale-in removes the highest indices first.
    cluster.kubectl("scale", "pclq", pclq, "-n", namespace, "--replicas=1")
    wait_for(
        "pclq scale-in",
        lambda: {n for n in actual_objects(cluster, namespace) if n.startswith(f"pod/{pclq}-")} == {f"pod/{pclq}-0"},
    )
    cluster.kubectl("scale", "pcsg", pcsg, "-n", namespace, "--replicas=1")
    wait_for(
        "pcsg scale-in",
        lambda: (
            not any(
                n.startswith(f"podclique/{pcsg}-1-") or n.startswith(f"podclique/{pcsg}-2-")
                for n in actual_objects(cluster, namespace)
            )
        ),
    )
    assert f"podclique/{pcsg}-0-pleader" in actual_objects(cluster, namespace)
    cluster.kubectl("scale", "pcs", name, "-n", namespace, "--replicas=1")
    wait_for("pcs scale-in", lambda: not any(f"/{name}-1" in n for n in actual_objects(cluster, namespace)))

    # Template replicas take effect when they change (Grove #150), and /scale wins otherwise.
    cluster.kubectl(
        "patch",
        "pcs",
        name,
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps([{"op": "replace", "path": "/spec/template/podCliqueScalingGroups/0/replicas", "value": 3}]),
    )
    wait_for(
        "template replicas applied",
        lambda: get(cluster, namespace, "pcsg", f"{name}-0-prefill")["spec"]["replicas"] == 3,
    )
    cluster.kubectl("scale", "pcsg", f"{name}-0-prefill", "-n", namespace, "--replicas=2")
    wait_for("pcsg /scale", lambda: f"podclique/{name}-0-prefill-2-pleader" not in actual_objects(cluster, namespace))
    time.sleep(2)  # give a wrong implementation the chance to revert /scale to the template value
    assert get(cluster, namespace, "pcsg", f"{name}-0-prefill")["spec"]["replicas"] == 2

    cluster.kubectl("delete", "pcs", name, "-n", namespace, "--wait=true", "--timeout=60s", timeout=70)
    wait_for("garbage collection", lambda: not actual_objects(cluster, namespace))


# ---------------------------------------------------------------------------------------------- validation


def test_invalid_spec_creates_nothing_and_says_why(cluster: Any, namespace: str, operator: Operator) -> None:
    pcs = load(ROOT / "examples/startup-order-explicit.yaml", namespace)
    pcs["metadata"]["name"] = "cyclic"
    cliques = pcs["spec"]["template"]["cliques"]
    cliques[0]["spec"]["startsAfter"] = [cliques[-1]["name"]]
    cliques[-1]["spec"]["startsAfter"] = [cliques[0]["name"]]
    # The admission policy (deploy/admission, issue 11) refuses startsAfter cycles; the operator's SpecValid check
    # is the backstop for a cluster installed without it (CRDs applied alone), so the policy's binding is
    # taken away for this create and restored after.
    policy = str(ROOT / "deploy/admission/podcliqueset-policy.yaml")
    binding = ("validatingadmissionpolicybinding", "grove-podcliqueset-rules")
    had_binding = cluster.kubectl("get", *binding, check=False).returncode == 0
    cluster.kubectl("delete", *binding, "--ignore-not-found", "--wait=true")
    try:
        # The API server stops enforcing a removed binding within a second or two.
        wait_for(
            "cyclic spec admitted without the policy",
            lambda: cluster.kubectl("apply", "-f", "-", input=json.dumps(pcs), check=False).returncode == 0,
            timeout=30,
        )
    finally:
        if had_binding:
            cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", policy)

    def spec_invalid() -> bool:
        conds = get(cluster, namespace, "pcs", "cyclic").get("status", {}).get("conditions", [])
        return any(x["type"] == "SpecValid" and x["status"] == "False" for x in conds)

    wait_for("SpecValid=False", spec_invalid, op=operator)
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "SpecInvalid" and e["type"] == "Warning" for e in events)
    assert not actual_objects(cluster, namespace)


# ------------------------------------------------------------------------------------------- startup order


HOLD_GATE = "test.grove.io/hold"


def _ready_time(pod: dict[str, Any]) -> str | None:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond["type"] == "Ready" and cond["status"] == "True":
            return str(cond["lastTransitionTime"])
    return None


@pytest.mark.parametrize("example", ["startup-order-inorder", "startup-order-explicit"])
def test_startup_order(cluster: Any, namespace: str, operator: Operator, example: str) -> None:
    """Parents are held back by a foreign scheduling gate (which the operator must never remove, Grove #724):
    dependents are created and ungated with the annotation "false" but, the gang being all or nothing (issue
    #9), not bound while their parents cannot be; once the parents' gate is lifted the whole gang is bound,
    the parents become Ready, and the dependents only after them."""
    pcs = load(ROOT / f"examples/{example}.yaml", namespace)
    name = pcs["metadata"]["name"]
    from grove.expansion import spec as specs
    from grove.expansion import startup

    model = specs.load(pcs)
    roots = [cl.name for cl in model.spec.template.cliques if not startup.parent_cliques(model, cl.name)]
    dependents = [cl.name for cl in model.spec.template.cliques if startup.parent_cliques(model, cl.name)]
    assert dependents
    for clique in pcs["spec"]["template"]["cliques"]:
        if clique["name"] in roots:
            clique["spec"]["podSpec"]["schedulingGates"] = [{"name": HOLD_GATE}]
    expected = expected_objects(pcs)
    apply(cluster, pcs)
    wait_for("all pods created", lambda: actual_objects(cluster, namespace) == expected, op=operator)

    # Intermediate state: dependents handed to the scheduler but held, roots held by the foreign gate; the
    # gang scheduler binds none of them (part of a gang is never bound).
    def clique_of(pod: dict[str, Any]) -> str:
        return str(pod["metadata"]["labels"][c.LABEL_PODCLIQUE].split(f"{name}-0-", 1)[1])

    def held() -> bool:
        dep = [p for p in pods(cluster, namespace) if clique_of(p) in dependents]
        return bool(dep) and all(not p["spec"].get("schedulingGates") for p in dep)

    wait_for("dependents ungated", held, op=operator)
    time.sleep(2)  # a wrong implementation would release them now
    for pod in pods(cluster, namespace):
        assert not pod["spec"].get("nodeName"), pod["metadata"]["name"]
        if clique_of(pod) in dependents:
            assert pod["metadata"]["annotations"][c.ANNOTATION_STARTUP_RELEASED] == "false"
            assert _ready_time(pod) is None, pod["metadata"]["name"]
            assert pod["spec"]["initContainers"][0]["name"] == "grove-startup-wait"
        else:
            assert {"name": HOLD_GATE} in pod["spec"]["schedulingGates"]  # never touched by the operator

    # Lift the parents' gate.
    for pod in pods(cluster, namespace):
        if {"name": HOLD_GATE} in (pod["spec"].get("schedulingGates") or []):
            cluster.kubectl(
                "patch",
                "pod",
                pod["metadata"]["name"],
                "-n",
                namespace,
                "--type=json",
                "-p",
                json.dumps([{"op": "remove", "path": "/spec/schedulingGates"}]),
            )
    cluster.kubectl("wait", "--for=condition=Ready", f"pcs/{name}", "-n", namespace, "--timeout=120s", timeout=130)

    # Order: every dependent became Ready no earlier than minAvailable pods of each parent.
    items = pods(cluster, namespace)
    ready: dict[str, list[str]] = {}
    for pod in items:
        ready.setdefault(pod["metadata"]["labels"][c.LABEL_PODCLIQUE], []).append(str(_ready_time(pod)))
    for clique in dependents:
        fqn = f"{name}-0-{clique}"
        for parent in startup.starts_after(model, 0, clique):
            parent_min = specs.clique_by_name(model, parent.split(f"{name}-0-", 1)[1]).spec.effective_min_available()
            parent_ready = sorted(ready[parent])[parent_min - 1]
            assert min(ready[fqn]) >= parent_ready, (fqn, parent, ready)
    cluster.kubectl("delete", "pcs", name, "-n", namespace, "--wait=true", "--timeout=60s", timeout=70)


# ------------------------------------------------------------------------------------------- crash/restart


def test_crash_during_1000_pod_expansion_converges_without_duplicates(
    cluster: Any, namespace: str, operator: Operator
) -> None:
    replicas = 500
    pcs = {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": {"name": "crash", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "template": {
                "cliques": [
                    {
                        "name": "w",
                        "spec": {
                            "roleName": "w",
                            "replicas": 2,
                            "minAvailable": 2,
                            "podSpec": {
                                "containers": [
                                    {
                                        "name": "w",
                                        "image": "registry.k8s.io/pause:3.10",
                                        "resources": {"requests": {"memory": "1Mi"}},
                                    }
                                ]
                            },
                        },
                    }
                ]
            },
        },
    }
    apply(cluster, pcs)

    def pod_count() -> int:
        return len(cluster.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.split())

    wait_for("first pods", lambda: pod_count() >= 100, timeout=180, op=operator)
    operator.kill()
    killed_at = pod_count()
    operator.start()
    expected = expected_objects(pcs)
    wait_for(
        "convergence after restart", lambda: actual_objects(cluster, namespace) == expected, timeout=400, op=operator
    )
    items = pods(cluster, namespace)
    assert len(items) == 2 * replicas, killed_at
    indices: dict[str, list[str]] = {}
    for pod in items:
        labels = pod["metadata"]["labels"]
        indices.setdefault(labels[c.LABEL_PODCLIQUE], []).append(labels[c.LABEL_POD_INDEX])
    assert all(sorted(v) == ["0", "1"] for v in indices.values())
    cluster.kubectl("wait", "--for=condition=Ready", "pcs/crash", "-n", namespace, "--timeout=300s", timeout=310)
    cluster.kubectl("delete", "pcs", "crash", "-n", namespace, "--wait=true", "--timeout=120s", timeout=130)


def test_restart_recomputes_a_stale_status_with_nothing_left_to_create(
    cluster: Any, namespace: str, operator: Operator
) -> None:
    """Issue 8 (the stuck `available 39/40` of the SIGKILL test): an operator killed after the last child
    changed but before the PCS status caught up must correct that status after its restart, although nothing
    else will ever change. The restart's first pass re-sends the gangs' kube-scheduler objects (answered
    AlreadyExists, and never watched): it used to count them as writes whose watch events bring the next pass,
    skip the status, and wait for an event that never came."""
    pcs = load(ROOT / "examples/single-node-disaggregated.yaml", namespace)
    apply(cluster, pcs)
    name = pcs["metadata"]["name"]
    cluster.kubectl("wait", "--for=condition=Ready", f"pcs/{name}", "-n", namespace, "--timeout=120s", timeout=130)
    operator.kill()
    stale = {"status": {"availableReplicas": 0, "updatedReplicas": 0}}
    cluster.kubectl(
        "patch", "pcs", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", json.dumps(stale)
    )
    assert get(cluster, namespace, "pcs", name)["status"]["availableReplicas"] == 0
    operator.start()
    want = pcs["spec"].get("replicas", 1)
    wait_for(
        "status recomputed after the restart",
        lambda: get(cluster, namespace, "pcs", name)["status"].get("availableReplicas") == want,
        timeout=60,
        op=operator,
    )
    cluster.kubectl("delete", "pcs", name, "-n", namespace, "--wait=true", "--timeout=120s", timeout=130)


# -------------------------------------------------------------------------------------------------- claims


def claim_names(cluster: Any, namespace: str) -> set[str]:
    out = cluster.kubectl("get", "resourceclaims", "-n", namespace, "-l", f"{c.LABEL_PART_OF}=sh", "-o", "json")
    return {
        i["metadata"]["name"]
        for i in json.loads(out.stdout)["items"]
        if not i["metadata"].get("deletionTimestamp")
        and (i["metadata"].get("labels") or {}).get(c.LABEL_COMPONENT) == c.COMPONENT_RESOURCE_CLAIM
    }


def test_claims_follow_scale_out_and_scale_in(cluster: Any, namespace: str, operator: Operator) -> None:
    """Per-replica claims at each level follow `kubectl scale` (no PCS generation change for pcsg/pclq)."""
    pod_spec = {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]}
    pcs = {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": {"name": "sh", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "template": {
                "resourceClaimTemplates": [
                    {
                        "name": "gpu",
                        "templateSpec": {
                            "spec": {
                                "devices": {
                                    "requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]
                                }
                            }
                        },
                    }
                ],
                "cliques": [
                    {
                        "name": "d",
                        "resourceSharing": [{"name": "gpu", "scope": "PerReplica"}],
                        "spec": {"roleName": "d", "replicas": 1, "podSpec": pod_spec},
                    },
                    {"name": "w", "spec": {"roleName": "w", "replicas": 1, "podSpec": pod_spec}},
                ],
                "podCliqueScalingGroups": [
                    {
                        "name": "sg",
                        "cliqueNames": ["w"],
                        "replicas": 1,
                        "resourceSharing": [{"name": "gpu", "scope": "PerReplica"}],
                    }
                ],
            },
        },
    }
    apply(cluster, pcs)
    base = {"sh-0-sg-0-gpu", "sh-0-d-0-gpu"}
    wait_for("claims", lambda: claim_names(cluster, namespace) == base, op=operator)

    cluster.kubectl("scale", "pcsg", "sh-0-sg", "-n", namespace, "--replicas=2")
    wait_for("pcsg scale-out claim", lambda: claim_names(cluster, namespace) == base | {"sh-0-sg-1-gpu"}, op=operator)
    cluster.kubectl("scale", "pclq", "sh-0-d", "-n", namespace, "--replicas=2")
    wanted = base | {"sh-0-sg-1-gpu", "sh-0-d-1-gpu"}
    wait_for("pclq scale-out claim", lambda: claim_names(cluster, namespace) == wanted, op=operator)

    cluster.kubectl("scale", "pcsg", "sh-0-sg", "-n", namespace, "--replicas=1")
    wait_for("pcsg scale-in", lambda: claim_names(cluster, namespace) == base | {"sh-0-d-1-gpu"}, op=operator)
    cluster.kubectl("scale", "pclq", "sh-0-d", "-n", namespace, "--replicas=1")
    wait_for("pclq scale-in", lambda: claim_names(cluster, namespace) == base, op=operator)

    cluster.kubectl("scale", "pcs", "sh", "-n", namespace, "--replicas=2")
    replica_1 = {"sh-1-sg-0-gpu", "sh-1-d-0-gpu"}
    wait_for("pcs scale-out claims", lambda: claim_names(cluster, namespace) == base | replica_1, op=operator)
    cluster.kubectl("scale", "pcs", "sh", "-n", namespace, "--replicas=1")
    wait_for("pcs scale-in", lambda: claim_names(cluster, namespace) == base, op=operator)


def test_operator_runs_the_computedomain_controller(cluster: Any, namespace: str, operator: Operator) -> None:
    """`grove operator` includes the ComputeDomain controller: a ComputeDomain gets its channel template."""
    from grove.computedomain import model as m

    domain = {
        "apiVersion": m.API_VERSION,
        "kind": m.KIND,
        "metadata": {"name": "cd", "namespace": namespace},
        "spec": {"numNodes": 0, "channel": {"resourceClaimTemplate": {"name": "cd-channel"}}},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(domain))

    def template() -> dict[str, Any] | None:
        got = cluster.kubectl("get", "resourceclaimtemplate", "cd-channel", "-n", namespace, "-o", "json", check=False)
        return dict(json.loads(got.stdout)) if got.returncode == 0 else None

    rct = wait_for("channel template", template, op=operator)
    uid = get(cluster, namespace, m.PLURAL, "cd")["metadata"]["uid"]
    assert rct["metadata"]["ownerReferences"][0]["uid"] == uid


# ------------------------------------------------------------------------------------------ rolling update


def _watch_ready(cluster: Any, namespace: str, selector: str, stop: Any, seen: list[int]) -> None:
    """Ready, non-terminating pods matching `selector` after every watch event (each event is a consistent
    state of the server at its resourceVersion, so a dip however short is seen)."""
    from kubernetes import client, watch

    core = client.CoreV1Api(cluster.api_client)
    listed = core.list_namespaced_pod(namespace, label_selector=selector)
    state = {p.metadata.name: p for p in listed.items}
    rv = listed.metadata.resource_version

    def ready_count() -> int:
        return sum(
            not p.metadata.deletion_timestamp
            and any(cond.type == "Ready" and cond.status == "True" for cond in (p.status.conditions or []))
            for p in state.values()
        )

    seen.append(ready_count())
    while not stop.is_set():
        w = watch.Watch()
        for event in w.stream(
            core.list_namespaced_pod, namespace, label_selector=selector, resource_version=rv, timeout_seconds=2
        ):
            obj = event["object"]
            rv = obj.metadata.resource_version
            if event["type"] == "DELETED":
                state.pop(obj.metadata.name, None)
            else:
                state[obj.metadata.name] = obj
            seen.append(ready_count())
            if stop.is_set():
                w.stop()


def test_rolling_update_replaces_pods_without_breaching_min_available(
    cluster: Any, namespace: str, operator: Operator
) -> None:
    import threading

    pcs = load(ROOT / "examples/single-node-disaggregated.yaml", namespace)
    name = pcs["metadata"]["name"]
    decode = next(i for i, cl in enumerate(pcs["spec"]["template"]["cliques"]) if cl["name"] == "decode")
    min_available = pcs["spec"]["template"]["cliques"][decode]["spec"]["minAvailable"]
    replicas = pcs["spec"]["template"]["cliques"][decode]["spec"]["replicas"]
    apply(cluster, pcs)
    cluster.kubectl("wait", "--for=condition=Ready", f"pcs/{name}", "-n", namespace, "--timeout=120s", timeout=130)
    pclq = f"{name}-0-decode"
    old_hash = get(cluster, namespace, "pclq", pclq)["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH]
    prefill_uids = {p["metadata"]["uid"] for p in pods(cluster, namespace, f"{c.LABEL_PODCLIQUE}={name}-0-prefill")}

    stop = threading.Event()
    seen: list[int] = []
    watcher = threading.Thread(
        target=_watch_ready, args=(cluster, namespace, f"{c.LABEL_PODCLIQUE}={pclq}", stop, seen), daemon=True
    )
    watcher.start()
    wait_for("watch started", lambda: seen)
    patch = [
        {
            "op": "replace",
            "path": f"/spec/template/cliques/{decode}/spec/podSpec/containers/0/image",
            "value": "registry.k8s.io/pause:3.9",
        }
    ]
    cluster.kubectl("patch", "pcs", name, "-n", namespace, "--type=json", "-p", json.dumps(patch))
    new_hash = wait_for(
        "new pod-template hash on the PodClique",
        lambda: (
            (h := get(cluster, namespace, "pclq", pclq)["metadata"]["labels"][c.LABEL_POD_TEMPLATE_HASH]) != old_hash
            and h
        ),
        op=operator,
    )

    def rolled() -> bool:
        current = [p for p in pods(cluster, namespace, f"{c.LABEL_PODCLIQUE}={pclq}")]
        return len(current) == replicas and all(
            p["metadata"]["labels"].get(c.LABEL_POD_TEMPLATE_HASH) == new_hash
            and not p["metadata"].get("deletionTimestamp")
            and p["spec"]["containers"][0]["image"] == "registry.k8s.io/pause:3.9"
            and any(
                cond["type"] == "Ready" and cond["status"] == "True" for cond in p["status"].get("conditions") or []
            )
            for p in current
        )

    wait_for("every decode pod replaced and Ready", rolled, timeout=180, op=operator)
    stop.set()
    watcher.join(timeout=10)

    def pcs_ready_again() -> bool:
        obj = get(cluster, namespace, "pcs", name)
        st = obj.get("status") or {}
        return st.get("observedGeneration") == obj["metadata"]["generation"] and any(
            cond["type"] == "Ready" and cond["status"] == "True" for cond in st.get("conditions") or []
        )

    wait_for("PodCliqueSet Ready again", pcs_ready_again, op=operator)

    def pclq_status_final() -> bool:
        # The PCS can be Ready (every pod Ready) a moment before the PodClique's status says every pod is new.
        st = get(cluster, namespace, "pclq", pclq)["status"]
        return st["updatedReplicas"] == replicas and bool((st.get("updateProgress") or {}).get("updateEndedAt"))

    wait_for("PodClique status: every pod updated, update ended", pclq_status_final, timeout=30, op=operator)
    status = get(cluster, namespace, "pclq", pclq)["status"]
    assert status["readyReplicas"] == replicas
    assert "readyPodsSelectedToUpdate" not in status["updateProgress"]
    # Ready decode pods never fell below minAvailable, and some pod was replaced in between.
    assert len(seen) > 1
    assert min(seen) >= min_available, seen
    # The other clique's pods were not touched.
    assert {p["metadata"]["uid"] for p in pods(cluster, namespace, f"{c.LABEL_PODCLIQUE}={name}-0-prefill")} == (
        prefill_uids
    )
    cluster.kubectl("delete", "pcs", name, "-n", namespace, "--wait=true", "--timeout=60s", timeout=70)


# ------------------------------------------------------------------------------------------------------ HPAs


def hpas(cluster: Any, namespace: str) -> dict[str, dict[str, Any]]:
    out = cluster.kubectl("get", "horizontalpodautoscalers.autoscaling", "-n", namespace, "-o", "json").stdout
    return {h["metadata"]["name"]: h for h in json.loads(out)["items"] if not h["metadata"].get("deletionTimestamp")}


def test_hpas_for_autoscaling_config(cluster: Any, namespace: str, operator: Operator) -> None:
    pcs = load(ROOT / "examples/autoscaling.yaml", namespace)
    name = pcs["metadata"]["name"]
    apply(cluster, pcs)
    wait_for("HPAs", lambda: len(hpas(cluster, namespace)) == 2, op=operator)
    found = hpas(cluster, namespace)
    uid = get(cluster, namespace, "pcs", name)["metadata"]["uid"]
    expected = {f"{name}-0-frontend": ("PodClique", 1, 5), f"{name}-0-model": ("PodCliqueScalingGroup", 1, 4)}
    assert set(found) == set(expected)
    for hpa_name, (kind, low, high) in expected.items():
        spec = found[hpa_name]["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "grove.io/v1alpha1", "kind": kind, "name": hpa_name}
        assert (spec["minReplicas"], spec["maxReplicas"]) == (low, high)
        (owner,) = found[hpa_name]["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("PodCliqueSet", uid, True)
        assert found[hpa_name]["metadata"]["labels"][c.LABEL_COMPONENT] == c.COMPONENT_HPA
    time.sleep(3)  # steady state: the operator never patches an HPA it created (generation stays 1)
    assert {n: h["metadata"]["generation"] for n, h in hpas(cluster, namespace).items()} == dict.fromkeys(expected, 1)
    # Scale-out of the PCS adds the new replica's HPAs, scale-in removes them.
    cluster.kubectl("scale", "pcs", name, "-n", namespace, "--replicas=2")
    wait_for("HPAs of replica 1", lambda: len(hpas(cluster, namespace)) == 4, op=operator)
    cluster.kubectl("scale", "pcs", name, "-n", namespace, "--replicas=1")
    wait_for("HPAs of replica 1 gone", lambda: set(hpas(cluster, namespace)) == set(expected), op=operator)
    # Removing the config deletes the HPA.
    groups = get(cluster, namespace, "pcs", name)["spec"]["template"]["podCliqueScalingGroups"]
    patch = [{"op": "remove", "path": "/spec/template/podCliqueScalingGroups/0/scaleConfig"}]
    assert groups[0]["name"] == "model"
    cluster.kubectl("patch", "pcs", name, "-n", namespace, "--type=json", "-p", json.dumps(patch))
    wait_for("scaleConfig HPA deleted", lambda: set(hpas(cluster, namespace)) == {f"{name}-0-frontend"}, op=operator)
    cluster.kubectl("delete", "pcs", name, "-n", namespace, "--wait=true", "--timeout=60s", timeout=70)
