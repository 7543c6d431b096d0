"""`DevCluster`: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
plus kwok for fake nodes, as plain local processes.

Why processes and not kind/k3d: the build machines have no container runtime, and tests must run against the
real API server, scheduler and controllers (admission, RBAC, DRA allocation, garbage collection) rather than a
mock. The binaries come from `make controlplane` (hack/controlplane, Kubernetes v1.37.2).

Everything listens on free 127.0.0.1 ports and lives under one work directory, so several clusters (a test
session and a sandbox) can run side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    # grove.devcluster.pki imports cryptography (~7 MiB): loaded only when a cluster is started, not by every
    # `grove` command (issue #13).
    from grove.devcluster.pki import PKIFiles

from grove.devcluster import nodes as _nodes
from grove.devcluster.kubeconfig import write_kubeconfig
from grove.devcluster.processes import (
    ProcessRecord,
    format_logs,
    free_port,
    is_alive,
    start_process,
    stop_records,
)

# The components we start, in start order. `kubectl` is the sixth binary but is only ever run on demand.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

# Feature gates for apiserver, controller-manager and scheduler (checked against
# k8s.io/kubernetes@v1.37.2 pkg/features/kube_features.go). Grove maps PodCliqueSets and PodGangs to the
# upstream Workload/PodGroup API, so the gang scheduling path is switched on here:
#   GenericWorkload (beta, off)                -> scheduling.k8s.io/v1beta1 Workload + PodGroup, GangScheduling plugin
#   TopologyAwareWorkloadScheduling (alpha)    -> TopologyPlacementGenerator plugin (topology-aware gangs)
#   CompositePodGroup (alpha)                  -> scheduling.k8s.io/v1alpha3 CompositePodGroup
#   DRAWorkloadResourceClaims (beta, off)      -> ResourceClaims shared by a Workload/PodGroup
# DRA itself (resource.k8s.io/v1) is GA and on; these DRA sub-features are already on by default in 1.37 and
# listed explicitly so the cluster keeps them if a default changes: DRAPartitionableDevices (beta),
# DRAConsumableCapacity (beta), DRADeviceTaints (GA), DRADeviceBindingConditions (beta).
# `GangScheduling` is not a separate gate in 1.37: GenericWorkload enables the plugin.
FEATURE_GATES: dict[str, bool] = {
    "GenericWorkload": True,
    "TopologyAwareWorkloadScheduling": True,
    "CompositePodGroup": True,
    "DRAWorkloadResourceClaims": True,
    "DRAPartitionableDevices": True,
    "DRAConsumableCapacity": True,
    "DRADeviceTaints": True,
    "DRADeviceBindingConditions": True,
}

# API versions that are off by default and that the gates above need.
RUNTIME_CONFIG: dict[str, bool] = {
    "scheduling.k8s.io/v1beta1": True,  # Workload, PodGroup (GenericWorkload)
    "scheduling.k8s.io/v1alpha3": True,  # CompositePodGroup
}

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
# Client-side rate limits for controller-manager and scheduler: far above what a 1000-pod benchmark needs, so
# the control plane is never what a benchmark measures.
CONTROLLER_QPS = 500
CONTROLLER_BURST = 1000
KWOK_POD_PARALLELISM = 32


class DevClusterError(RuntimeError):
    """The cluster could not be started; the message ends with the tail of every component log."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl failed; unlike CalledProcessError, str() shows kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstderr: {self.stderr}"


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def allocate(cls) -> Ports:
        ports: set[int] = set()
        while len(ports) < 5:
            ports.add(free_port())
        a, b, c, d, e = sorted(ports)
        return cls(a, b, c, d, e)


def default_bin_dir() -> Path:
    """`$GROVE_BIN_DIR`, else `<repo>/.cache/bin` (where `make controlplane` puts the binaries)."""
    env = os.environ.get("GROVE_BIN_DIR")
    if env:
        return Path(env)
    return repo_root() / ".cache" / "bin"


def repo_root() -> Path:
    """The checkout this package lives in (editable install), else the current directory."""
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def missing_binaries(bin_dir: Path) -> list[str]:
    """Names of required binaries that are not in `bin_dir` (empty list: all present)."""
    needed = ["controlplane", *COMPONENTS, "kubectl"]
    return [name for name in needed if not os.access(bin_dir / name, os.X_OK)]


def stages_file() -> str:
    """Our KWOK stages (shipped as package data)."""
    return resources.files("grove.devcluster").joinpath("kwok_stages.yaml").read_text()


class DevCluster:
    """A local control plane. `start()` returns once the API is ready, the `default` ServiceAccount exists and
    the initial KWOK nodes are Ready; `stop()` terminates exactly the processes it started.

    `detached=True` (the sandbox) lets the processes outlive this Python process; otherwise the kernel sends
    them SIGKILL if this process dies, so an aborted test run leaves nothing behind. Linux ties that to the
    *thread* that called `start()`: call it from the main thread (or one that lives as long as the cluster).
    """

    def __init__(
        self,
        workdir: Path | str,
        bin_dir: Path | str | None = None,
        *,
        initial_nodes: int = 3,
        node_prefix: str = "kwok-node-",
        detached: bool = False,
        feature_gates: Mapping[str, bool] | None = None,
        runtime_config: Mapping[str, bool] | None = None,
        extra_args: Mapping[str, Sequence[str]] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.bin_dir = Path(bin_dir).resolve() if bin_dir else default_bin_dir().resolve()
        self.initial_nodes = initial_nodes
        self.node_prefix = node_prefix
        self.detached = detached
        self.feature_gates = dict(FEATURE_GATES if feature_gates is None else feature_gates)
        self.runtime_config = dict(RUNTIME_CONFIG if runtime_config is None else runtime_config)
        self.extra_args = {k: list(v) for k, v in (extra_args or {}).items()}
        self._log = log or (lambda _msg: None)
        self.ports = Ports.allocate()
        self.server = f"https://127.0.0.1:{self.ports.apiserver}"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.pki: PKIFiles | None = None
        self.records: list[ProcessRecord] = []
        self.node_names: list[str] = []
        self.started_at: float | None = None
        self.startup_seconds: float | None = None
        self._popens: dict[int, subprocess.Popen[bytes]] = {}
        self._api_client: Any = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 180.0, attempts: int = 3) -> DevCluster:
        """Start every component and wait until the cluster is usable. On failure everything started is
        stopped again and DevClusterError carries the tail of each log.

        Free ports are picked before the components bind them, so another process (often another cluster
        starting at the same moment) can take one in between; such a start is retried on fresh ports.
        """
        missing = missing_binaries(self.bin_dir)
        if missing:
            raise DevClusterError(
                f"control-plane binaries missing in {self.bin_dir}: {', '.join(missing)}; "
                "build them with `make controlplane`"
            )
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except DevClusterError as error:
                if attempt == attempts or "address already in use" not in str(error):
                    raise
                self._log(f"port taken while starting (attempt {attempt}); retrying on fresh ports")
                self._reset_for_retry()
        raise AssertionError("unreachable")

    def _reset_for_retry(self) -> None:
        self.records = []
        self._popens = {}
        self.ports = Ports.allocate()
        self.server = f"https://127.0.0.1:{self.ports.apiserver}"
        # etcd refuses a data dir bootstrapped with other peer URLs; the data is from the failed try anyway.
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)

    def _start_once(self, timeout: float) -> DevCluster:
        t0 = time.monotonic()
        self.started_at = time.time()
        deadline = t0 + timeout
        try:
            self._prepare_files()
            self._start("etcd", self._etcd_argv())
            self._wait("etcd /health", deadline, self._etcd_healthy)
            self._start("kube-apiserver", self._apiserver_argv())
            self._wait("kube-apiserver /readyz", deadline, lambda: self._https_ok(self.ports.apiserver, "/readyz"))
            self._start("kube-controller-manager", self._kcm_argv())
            self._start("kube-scheduler", self._scheduler_argv())
            self._start("kwok", self._kwok_argv(), env={"HOME": str(self.workdir)})
            self._wait(
                "kube-scheduler /readyz",
                deadline,
                lambda: self._https_ok(self.ports.scheduler, "/readyz", client_cert=False),
            )
            self._wait("ServiceAccount default/default", deadline, self._default_sa_exists)
            if self.initial_nodes:
                self.node_names = self.create_nodes(
                    self.initial_nodes,
                    self.node_prefix,
                    wait_ready=False,
                )
                self._wait(f"{self.initial_nodes} KWOK node(s) Ready", deadline, self._initial_nodes_ready)
        except BaseException as error:
            logs = format_logs(self.records)
            self.stop()
            if isinstance(error, DevClusterError | TimeoutError | OSError):
                raise DevClusterError(f"{error}\n{logs}") from error
            raise
        self.startup_seconds = time.monotonic() - t0
        self._log(f"control plane ready in {self.startup_seconds:.1f}s at {self.server}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the processes this object started: clients first, then the apiserver, then etcd (so nothing
        spends its shutdown retrying a backend that is already gone)."""
        if self._api_client is not None:
            with contextlib.suppress(Exception):
                self._api_client.close()
            self._api_client = None
        order = [
            [r for r in self.records if r.name not in ("kube-apiserver", "etcd")],
            [r for r in self.records if r.name == "kube-apiserver"],
            [r for r in self.records if r.name == "etcd"],
        ]
        for group in order:
            if group:
                stop_records(group, timeout=timeout, popens=self._popens)

    def __enter__(self) -> DevCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> dict[str, bool]:
        """Component name -> whether its process is still running."""
        return {r.name: is_alive(r) for r in self.records}

    def logs(self, lines: int = 40) -> str:
        return format_logs(self.records, lines)

    def state(self) -> dict[str, Any]:
        """A JSON-able description (ports, PIDs, paths) from which another process can check or stop us."""
        return {
            "workdir": str(self.workdir),
            "bin_dir": str(self.bin_dir),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": asdict(self.ports),
            "processes": [r.to_dict() for r in self.records],
            "nodes": list(self.node_names),
            "started_at": self.started_at,
            "startup_seconds": self.startup_seconds,
        }

    # ------------------------------------------------------------------ clients
    @property
    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient for the admin identity (created on first use, shared)."""
        if self._api_client is None:
            from kubernetes import config

            self._api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._api_client

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,  # mirrors subprocess.run
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run our kubectl against this cluster (text mode; stdout/stderr captured)."""
        argv = [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def create_nodes(
        self,
        count: int,
        name_prefix: str,
        labels: Mapping[str, str] | None = None,
        capacity: Mapping[str, str] | None = None,
        allocatable: Mapping[str, str] | None = None,
        taints: Sequence[Mapping[str, str]] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Create KWOK nodes (see grove.devcluster.nodes.create_nodes)."""
        return _nodes.create_nodes(self.api_client, count, name_prefix, labels, capacity, allocatable, taints, **kwargs)

    # ------------------------------------------------------------------ internals
    def _prepare_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        from grove.devcluster.pki import write_pki

        self.pki = write_pki(self.workdir / "pki")
        write_kubeconfig(self.kubeconfig, self.server, self.pki.ca_cert, self.pki.admin_cert, self.pki.admin_key)
        (self.workdir / "kwok-stages.yaml").write_text(stages_file())
        # kwok plays 4 pod stages at a time by default; with 1000-pod benchmarks it, not the control plane, was
        # the bottleneck (pods waited ~20 s between bound and Running), so give it more workers.
        kwok_config = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            # A config file replaces kwok's defaults for these fields (0 is rejected), so all are spelled out.
            "options": {
                "podPlayStageParallelism": KWOK_POD_PARALLELISM,
                "nodePlayStageParallelism": 8,
                "nodeLeaseParallelism": 8,
                "podsOnNodeSyncParallelism": 4,
            },
        }
        (self.workdir / "kwok-config.yaml").write_text(yaml.safe_dump(kwok_config))
        scheduler_config = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {
                "kubeconfig": str(self.kubeconfig),
                "qps": CONTROLLER_QPS,
                "burst": CONTROLLER_BURST,
            },
            "leaderElection": {"leaderElect": False},
        }
        (self.workdir / "scheduler-config.yaml").write_text(yaml.safe_dump(scheduler_config))

    def _gates(self) -> str:
        return ",".join(f"{k}={str(v).lower()}" for k, v in sorted(self.feature_gates.items()))

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _etcd_argv(self) -> list[str]:
        p = self.ports
        client_url = f"http://127.0.0.1:{p.etcd_client}"
        peer_url = f"http://127.0.0.1:{p.etcd_peer}"
        return [
            self._bin("etcd"),
            "--name=grove-dev",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=grove-dev={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync=true",  # throwaway data: skip fsync, the main cost of etcd on CI disks
            "--quota-backend-bytes=8589934592",
            "--auto-compaction-mode=periodic",
            "--auto-compaction-retention=5m",
            "--log-level=warn",
            *self.extra_args.get("etcd", []),
        ]

    def _apiserver_argv(self) -> list[str]:
        from grove.devcluster.pki import FRONT_PROXY_USER

        assert self.pki is not None
        p = self.ports
        runtime_config = ",".join(f"{k}={str(v).lower()}" for k, v in sorted(self.runtime_config.items()))
        argv = [
            self._bin("kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{p.etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={p.apiserver}",
            f"--tls-cert-file={self.pki.serving_cert}",
            f"--tls-private-key-file={self.pki.serving_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            f"--requestheader-client-ca-file={self.pki.ca_cert}",
            f"--requestheader-allowed-names={FRONT_PROXY_USER}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self.pki.front_proxy_cert}",
            f"--proxy-client-key-file={self.pki.front_proxy_key}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={self.pki.sa_pub}",
            f"--service-account-signing-key-file={self.pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            # 127.0.0.1 is not a valid endpoint for the `kubernetes` Service; nothing in-cluster needs it.
            "--endpoint-reconciler-type=none",
            f"--feature-gates={self._gates()}",
            # Generous in-flight limits for 1000-pod benchmarks. APF stays on (it is what production runs);
            # the admin identity is system:masters, which APF exempts, so it never queues our components.
            "--max-requests-inflight=3000",
            "--max-mutating-requests-inflight=1500",
            "--enable-priority-and-fairness=true",
            "--profiling=false",
        ]
        if runtime_config:
            argv.append(f"--runtime-config={runtime_config}")
        return argv + self.extra_args.get("kube-apiserver", [])

    def _kcm_argv(self) -> list[str]:
        assert self.pki is not None
        kc = str(self.kubeconfig)
        return [
            self._bin("kube-controller-manager"),
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--leader-elect=false",
            "--controllers=*",
            "--use-service-account-credentials=false",
            f"--service-account-private-key-file={self.pki.sa_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            f"--cluster-signing-cert-file={self.pki.ca_cert}",
            f"--cluster-signing-key-file={self.pki.ca_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.controller_manager}",
            f"--kube-api-qps={CONTROLLER_QPS}",
            f"--kube-api-burst={CONTROLLER_BURST}",
            f"--feature-gates={self._gates()}",
            *self.extra_args.get("kube-controller-manager", []),
        ]

    def _scheduler_argv(self) -> list[str]:
        kc = str(self.kubeconfig)
        return [
            self._bin("kube-scheduler"),
            f"--config={self.workdir / 'scheduler-config.yaml'}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports.scheduler}",
            f"--feature-gates={self._gates()}",
            *self.extra_args.get("kube-scheduler", []),
        ]

    def _kwok_argv(self) -> list[str]:
        return [
            self._bin("kwok"),
            f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={_nodes.KWOK_ANNOTATION}={_nodes.KWOK_ANNOTATION_VALUE}",
            f"--cidr={POD_CIDR}",
            "--node-ip=10.250.0.1",
            "--node-lease-duration-seconds=40",
            f"--config={self.workdir / 'kwok-config.yaml'}",
            f"--config={self.workdir / 'kwok-stages.yaml'}",
            *self.extra_args.get("kwok", []),
        ]

    def _start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        # Components must not pick up a developer's KUBECONFIG: every one gets --kubeconfig explicitly.
        child_env = {"KUBECONFIG": str(self.kubeconfig), **(env or {})}
        proc, record = start_process(
            name,
            argv,
            self.workdir / "logs" / f"{name}.log",
            env=child_env,
            cwd=self.workdir,
            die_with_parent=not self.detached,
        )
        self._popens[proc.pid] = proc
        self.records.append(record)
        self._log(f"started {name} (pid {proc.pid})")

    def _wait(self, what: str, deadline: float, check: Callable[[], bool]) -> None:
        while True:
            dead = [r.name for r in self.records if not is_alive(r)]
            if dead:
                raise DevClusterError(f"{', '.join(dead)} exited while waiting for {what}")
            with contextlib.suppress(Exception):
                if check():
                    self._log(f"ok: {what}")
                    return
            if time.monotonic() > deadline:
                raise DevClusterError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def _etcd_healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.ports.etcd_client}/health"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")

    def _ssl_context(self, client_cert: bool) -> ssl.SSLContext:
        assert self.pki is not None
        if client_cert:
            ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
            ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
            return ctx
        # The scheduler serves a self-signed certificate of its own; we only ask it whether it is ready.
        return ssl._create_unverified_context()

    def _https_ok(self, port: int, path: str, *, client_cert: bool = True) -> bool:
        ctx = self._ssl_context(client_cert)
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, timeout=3) as resp:
                return bool(resp.status == 200)
        except urllib.error.HTTPError:
            return False

    def get(self, path: str) -> bytes:
        """GET an apiserver path as admin (for /metrics, /version and other non-resource URLs)."""
        ctx = self._ssl_context(True)
        with urllib.request.urlopen(f"{self.server}{path}", context=ctx, timeout=30) as resp:
            data: bytes = resp.read()
            return data

    def _default_sa_exists(self) -> bool:
        return self._https_ok(self.ports.apiserver, "/api/v1/namespaces/default/serviceaccounts/default")

    def _initial_nodes_ready(self) -> bool:
        from kubernetes import client

        core = client.CoreV1Api(self.api_client)
        ready = {n.metadata.name for n in core.list_node().items if n.metadata and _nodes.node_is_ready(n)}
        return set(self.node_names) <= ready
