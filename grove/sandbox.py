"""`grove sandbox`: a long-running local cluster for trying grove-py by hand.

`up` starts the same control plane the tests use (grove.devcluster) but detached, so it survives the command,
and records every process it started (PID plus start time) in one state file. `down` stops exactly those
processes, never anything found by name. More long-running processes (the operator, one DRA driver per GPU
node) join the same supervision through `Sandbox.start_extra()`, so `status` and `down` cover them too.

State lives in `$GROVE_SANDBOX_DIR`, else `<repo>/.cache/sandbox/`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grove.devcluster import (
    DevCluster,
    DevClusterError,
    create_nodes,
    default_bin_dir,
    gpu_node_capacity,
    gpu_node_labels,
)
from grove.devcluster.crds import crd_names, wait_established
from grove.devcluster.nodes import (
    node_is_ready,
    parse_topology,
    topology_binding,
    topology_node_labels,
    wait_nodes_ready,
)
from grove.devcluster.processes import ProcessRecord, is_alive, start_process, stop_records

STATE_VERSION = 1
CPU_NODE_PREFIX = "cpu-node-"
GPU_NODE_PREFIX = "gpu-node-"
TOPOLOGY_NAME = "sandbox"  # the ClusterTopologyBinding that `up --topology` creates


def sandbox_dir() -> Path:
    env = os.environ.get("GROVE_SANDBOX_DIR")
    if env:
        return Path(env).resolve()
    from grove.devcluster import repo_root

    return repo_root() / ".cache" / "sandbox"


class Sandbox:
    """The state file and the processes it lists. Safe to use from any process (PIDs are checked against
    their recorded start time before any signal is sent)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = (directory or sandbox_dir()).resolve()
        self.state_path = self.dir / "state.json"
        self.cluster_dir = self.dir / "cluster"
        self.logs_dir = self.dir / "logs"

    # -------------------------------------------------------------- state
    def load(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_text())
            return data
        except FileNotFoundError:
            return None

    def save(self, state: Mapping[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(self.state_path)

    def records(self, state: Mapping[str, Any] | None = None) -> list[ProcessRecord]:
        """Every recorded process: the cluster's components, then the extras."""
        state = state if state is not None else self.load()
        if not state:
            return []
        cluster = [ProcessRecord.from_dict(p) for p in state.get("cluster", {}).get("processes", [])]
        extras = [ProcessRecord.from_dict(p) for p in state.get("extras", [])]
        return cluster + extras

    def running(self) -> bool:
        return any(is_alive(r) for r in self.records())

    @property
    def kubeconfig(self) -> Path:
        return self.cluster_dir / "kubeconfig"

    # -------------------------------------------------------------- processes
    def start_extra(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> ProcessRecord:
        """Start another long-running process (operator, DRA driver...) under the sandbox's supervision.

        It runs detached with KUBECONFIG pointing at the sandbox, logs to `<sandbox>/logs/<name>.log`, is
        listed by `status` and is stopped by `down` (before the control plane, so it can shut down cleanly).
        """
        state = self.load()
        if state is None:
            raise RuntimeError("no sandbox is running; run `grove sandbox up` first")
        if any(e["name"] == name for e in state.get("extras", [])):
            raise ValueError(f"a sandbox process named {name!r} is already recorded")
        child_env = {"KUBECONFIG": str(self.kubeconfig), **dict(env or {})}
        _proc, record = start_process(
            name, argv, self.logs_dir / f"{name}.log", env=child_env, cwd=cwd, die_with_parent=False
        )
        state.setdefault("extras", []).append(record.to_dict())
        self.save(state)
        return record

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Stop every recorded process (extras, then controllers, apiserver, etcd) and remove the state.

        Returns the names of processes that needed SIGKILL.
        """
        state = self.load()
        if state is None:
            return []
        records = self.records(state)
        extras = [ProcessRecord.from_dict(p) for p in state.get("extras", [])]
        cluster = [r for r in records if r not in extras]
        killed: list[str] = []
        groups = [
            extras,
            [r for r in cluster if r.name not in ("kube-apiserver", "etcd")],
            [r for r in cluster if r.name == "kube-apiserver"],
            [r for r in cluster if r.name == "etcd"],
        ]
        for group in groups:
            if group:
                killed += stop_records(group, timeout=timeout)
        still = [r.name for r in records if is_alive(r)]
        if still:
            raise RuntimeError(f"sandbox processes still alive after stop: {still}")
        shutil.rmtree(self.cluster_dir, ignore_errors=True)
        shutil.rmtree(self.logs_dir, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)
        return killed


# Hooks run at the end of `grove sandbox up`, after the cluster and nodes exist. Each gets the Sandbox, the
# parsed args and the state (with "gpu_nodes").
UpHook = Callable[[Sandbox, argparse.Namespace, dict[str, Any]], None]
UP_HOOKS: list[UpHook] = []


SANDBOX_EXAMPLE = "examples/single-node-disaggregated.yaml"
# Manifests every sandbox needs before the operator starts: our CRDs and NVIDIA-compatible DeviceClasses.
PLATFORM_MANIFESTS = ("api/crds", "deploy/admission/podcliqueset-policy.yaml", "deploy/dra/deviceclasses.yaml")


def simulated_gpu_config(gpu_nodes: Sequence[str]) -> dict[str, Any]:
    """GPUs for the simulated drivers: H100s everywhere, and MIG slices on the second GPU node (if any), so
    every kind of request in examples/gpu-mig-computedomain.yaml has somewhere to go."""
    nodes: dict[str, Any] = {name: {"count": 8} for name in gpu_nodes}
    if len(gpu_nodes) > 1:
        nodes[gpu_nodes[1]]["migLayout"] = {0: ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"]}
    return {"defaults": {"model": "H100-80GB", "count": 8}, "nodes": nodes}


def kubectl(sandbox: Sandbox, *args: str, timeout: float = 120.0, input: str | None = None) -> str:
    """Run our own kubectl (same version as the control plane) against the sandbox."""
    import subprocess

    from grove.devcluster import repo_root

    argv = [str(default_bin_dir() / "kubectl"), f"--kubeconfig={sandbox.kubeconfig}", *args]
    done = subprocess.run(
        argv, cwd=repo_root(), capture_output=True, text=True, timeout=timeout, check=False, input=input
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def start_platform(sandbox: Sandbox, args: argparse.Namespace, state: dict[str, Any]) -> None:
    """Install the CRDs and DeviceClasses, start the operator and one simulated DRA driver per GPU node, then
    apply an example and wait until it is Ready: `up` shows the whole system working, not just a cluster."""
    import yaml

    if args.bare:
        return
    for manifest in PLATFORM_MANIFESTS:
        # Server-side apply: the PodCliqueSet CRD (with the full PodSpec schema) is too big for the
        # last-applied annotation of a client-side apply.
        kubectl(sandbox, "apply", "--server-side", "--force-conflicts", "-f", manifest)
    # Per CRD by name, polling until Established (issue 14: `kubectl wait ... crd --all` fails on a CRD
    # that has no status yet).
    from kubernetes import config

    from grove.devcluster import repo_root

    with config.new_client_from_config(config_file=str(sandbox.kubeconfig)) as api:
        wait_established(api, crd_names(repo_root() / m for m in PLATFORM_MANIFESTS), timeout=60.0)
    python = sys.executable
    sandbox.start_extra("operator", [python, "-m", "grove.cli", "operator", "--all-namespaces"])
    config_path = sandbox.dir / "simulated-gpus.yaml"
    config_path.write_text(yaml.safe_dump(simulated_gpu_config(state["gpu_nodes"])))
    for node in state["gpu_nodes"]:
        node_dir = sandbox.dir / "n" / node  # short: unix socket paths are limited to 107 characters
        sandbox.start_extra(
            f"driver-{node}",
            [
                python,
                "-m",
                "grove.cli",
                "driver",
                f"--node-name={node}",
                "--backend=simulated",
                "--compute-domain-channels",
                f"--simulated-config={config_path}",
                f"--kubeconfig={sandbox.kubeconfig}",
                f"--plugin-registration-dir={node_dir / 'reg'}",
                f"--plugin-data-dir={node_dir / 'dra'}",
                f"--cdi-root={node_dir / 'cdi'}",
            ],
        )
    if args.example:
        kubectl(sandbox, "apply", "-f", args.example)
        name = yaml.safe_load(Path(args.example).read_text())["metadata"]["name"]
        kubectl(
            sandbox,
            "wait",
            "--for=condition=Ready",
            f"pcs/{name}",
            f"--timeout={int(args.timeout)}s",
            timeout=args.timeout + 10,
        )
        print(kubectl(sandbox, "get", f"pcs/{name}"), file=sys.stderr)
        print(kubectl(sandbox, "get", "pclq,pods", "-l", f"app.kubernetes.io/part-of={name}"), file=sys.stderr)


UP_HOOKS.append(start_platform)


def create_gpu_nodes(cluster: DevCluster, args: argparse.Namespace) -> list[str]:
    """The GPU nodes; with `--topology`, labelled by domain (issue #9) so packing can be seen."""
    if not args.topology:
        count = 2 if args.gpu_nodes is None else args.gpu_nodes
        if not count:
            return []
        return create_nodes(
            cluster.api_client,
            count,
            GPU_NODE_PREFIX,
            labels=gpu_node_labels(count=args.gpus_per_node),
            capacity=gpu_node_capacity(),
            timeout=args.timeout,
        )
    per_node = topology_node_labels(parse_topology(args.topology), args.gpu_nodes)
    names: list[str] = []
    for i, topology in enumerate(per_node):
        names += create_nodes(
            cluster.api_client,
            1,
            GPU_NODE_PREFIX,
            labels={**gpu_node_labels(count=args.gpus_per_node), **topology},
            capacity=gpu_node_capacity(),
            start_index=i,
            wait_ready=False,
        )
    wait_nodes_ready(cluster.api_client, names, timeout=args.timeout)
    return names


def apply_topology(sandbox: Sandbox, args: argparse.Namespace, state: dict[str, Any]) -> None:
    """The ClusterTopologyBinding `sandbox` for `--topology` (needs the CRDs, so not with --bare)."""
    if not args.topology or args.bare:
        return
    binding = topology_binding(TOPOLOGY_NAME, parse_topology(args.topology))
    kubectl(sandbox, "apply", "-f", "-", input=json.dumps(binding))


UP_HOOKS.append(apply_topology)


# ------------------------------------------------------------------ commands
def cmd_up(args: argparse.Namespace) -> int:
    sandbox = Sandbox()
    t0 = time.monotonic()
    if sandbox.load() is not None:
        if sandbox.running():
            print(f"sandbox already running (state: {sandbox.state_path})", file=sys.stderr)
            print(f"export KUBECONFIG={sandbox.kubeconfig}")
            return 0
        sandbox.stop()  # stale state from a crashed/rebooted sandbox: nothing alive, just clean up
    shutil.rmtree(sandbox.cluster_dir, ignore_errors=True)
    shutil.rmtree(sandbox.logs_dir, ignore_errors=True)
    cluster = DevCluster(
        sandbox.cluster_dir,
        default_bin_dir(),
        initial_nodes=args.nodes,
        node_prefix=CPU_NODE_PREFIX,
        detached=True,
        log=(lambda m: print(f"  {m}", file=sys.stderr)) if args.verbose else None,
    )
    try:
        cluster.start(timeout=args.timeout)
    except DevClusterError as error:
        print(f"sandbox up failed: {error}", file=sys.stderr)
        return 1
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "cluster": cluster.state(),
        "extras": [],
        "cpu_nodes": list(cluster.node_names),
        "gpu_nodes": [],
    }
    sandbox.save(state)  # record PIDs before anything else can fail, so `down` can always clean up
    try:
        state["gpu_nodes"] = create_gpu_nodes(cluster, args)
        sandbox.save(state)
        for hook in UP_HOOKS:
            hook(sandbox, args, state)
    except Exception as error:
        print(f"sandbox up failed after the control plane started: {error}", file=sys.stderr)
        print(cluster.logs(), file=sys.stderr)
        sandbox.stop()
        return 1
    elapsed = time.monotonic() - t0
    print(
        f"sandbox up in {elapsed:.1f}s: {cluster.server}, {len(state['cpu_nodes'])} CPU + "
        f"{len(state['gpu_nodes'])} GPU KWOK nodes; logs in {sandbox.cluster_dir / 'logs'}",
        file=sys.stderr,
    )
    print(f"export KUBECONFIG={sandbox.kubeconfig}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    sandbox = Sandbox()
    state = sandbox.load()
    if state is None:
        print("sandbox: not running")
        return 1
    print(f"sandbox: {sandbox.dir}")
    print(f"  server:     {state['cluster']['server']}")
    print(f"  kubeconfig: {sandbox.kubeconfig}")
    all_alive = True
    for rec in sandbox.records(state):
        alive = is_alive(rec)
        all_alive &= alive
        print(f"  {rec.name:<26} pid {rec.pid:<8} {'alive' if alive else 'DEAD'}")
    try:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(sandbox.kubeconfig))
        with api:
            nodes = client.CoreV1Api(api).list_node(_request_timeout=5).items
        ready = sum(1 for n in nodes if node_is_ready(n))
        print(f"  nodes:      {len(nodes)} ({ready} Ready)")
    except Exception as error:  # the status command must report, not crash, when the API is down
        print(f"  nodes:      API unreachable ({type(error).__name__})")
        all_alive = False
    return 0 if all_alive else 1


def cmd_env(args: argparse.Namespace) -> int:
    sandbox = Sandbox()
    if sandbox.load() is None:
        print("sandbox: not running; run `grove sandbox up` first", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={sandbox.kubeconfig}")
    print(f'export PATH="{default_bin_dir()}:$PATH"')
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    sandbox = Sandbox()
    if sandbox.load() is None:
        print("sandbox: not running")
        return 0
    names = [r.name for r in sandbox.records()]
    killed = sandbox.stop()
    print(f"sandbox down: stopped {', '.join(names)}" + (f" (SIGKILL: {', '.join(killed)})" if killed else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    parser = subparsers.add_parser(
        "sandbox",
        help="run a local Kubernetes control plane with fake (KWOK) CPU and GPU nodes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="sandbox_command", metavar="{up,status,env,down}")
    sub.required = True
    up = sub.add_parser("up", help="start the sandbox (detached) and print the KUBECONFIG export")
    up.add_argument("--nodes", type=int, default=3, help="CPU KWOK nodes (default 3)")
    up.add_argument("--gpu-nodes", type=int, default=None, help="GPU KWOK nodes (default 2, or as --topology says)")
    up.add_argument(
        "--topology",
        default="",
        help="label the GPU nodes by topology domain and create ClusterTopologyBinding 'sandbox', e.g. "
        "rack=2,host=4 (2 racks of 4 hosts) or zone=2,rack=2 (the --gpu-nodes spread over 4 racks)",
    )
    up.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per GPU node (default 8)")
    up.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
    up.add_argument("-v", "--verbose", action="store_true", help="print each startup step")
    up.add_argument("--bare", action="store_true", help="only the cluster: no CRDs, operator, drivers or example")
    up.add_argument(
        "--example",
        default=SANDBOX_EXAMPLE,
        help=f"PodCliqueSet applied and waited for once up (default {SANDBOX_EXAMPLE}; '' for none)",
    )
    up.set_defaults(func=cmd_up)
    status = sub.add_parser("status", help="show each sandbox process alive/dead and the node count")
    status.set_defaults(func=cmd_status)
    env = sub.add_parser("env", help="print shell exports (KUBECONFIG, PATH with our kubectl) for eval")
    env.set_defaults(func=cmd_env)
    down = sub.add_parser("down", help="stop exactly the processes `up` recorded and remove the state")
    down.set_defaults(func=cmd_down)
