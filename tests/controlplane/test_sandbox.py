"""Integration test for `grove sandbox`: up starts a detached cluster that survives the command, status
reports it, and down stops exactly the recorded processes (checked by PID) and removes the state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from grove.devcluster import default_bin_dir, missing_binaries

pytestmark = pytest.mark.integration


def _grove(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grove.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _kubectl(kubeconfig: Path, *args: str) -> str:
    return subprocess.run(
        [str(default_bin_dir() / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_sandbox_up_status_down_leaves_nothing(short_tmp: Path) -> None:
    tmp_path = short_tmp
    if missing_binaries(default_bin_dir()):
        pytest.fail("control-plane binaries missing: run `make controlplane`")
    env = {**os.environ, "GROVE_SANDBOX_DIR": str(tmp_path / "sandbox")}
    env.pop("KUBECONFIG", None)
    up = _grove("sandbox", "up", "--nodes", "2", "--gpu-nodes", "1", env=env)
    assert up.returncode == 0, up.stderr
    state = json.loads((tmp_path / "sandbox" / "state.json").read_text())
    records = state["cluster"]["processes"]
    pids = {r["name"]: r["pid"] for r in records}
    try:
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
        # The whole system, not only the cluster: the operator and one simulated DRA driver per GPU node.
        pids.update({e["name"]: e["pid"] for e in state["extras"]})
        assert {e["name"] for e in state["extras"]} == {"operator", "driver-gpu-node-0"}
        kubeconfig = tmp_path / "sandbox" / "cluster" / "kubeconfig"
        assert f"export KUBECONFIG={kubeconfig}" in up.stdout
        assert "sandbox up in" in up.stderr
        # The CLI has exited; the processes live on, each leading its own session.
        logs = tmp_path / "sandbox" / "logs"
        for name, pid in pids.items():
            log = logs / f"{name}.log"
            assert psutil.pid_exists(pid), f"{name} died: {log.read_text()[-3000:] if log.exists() else ''}"
            proc = psutil.Process(pid)
            assert proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
            assert os.getsid(pid) == pid

        status = _grove("sandbox", "status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("alive") == 7
        assert "3 (3 Ready)" in status.stdout  # 2 CPU + 1 GPU node

        nodes = subprocess.run(
            [
                str(default_bin_dir() / "kubectl"),
                f"--kubeconfig={kubeconfig}",
                "get",
                "nodes",
                "-l",
                "nvidia.com/gpu.present=true",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert nodes == ["node/gpu-node-0"]
        # `up` applied the example and waited for it: it is Ready, and the driver published its GPUs.
        ready = _kubectl(
            kubeconfig,
            "get",
            "pcs/disagg",
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        )
        assert ready == "True"
        slices = _kubectl(kubeconfig, "get", "resourceslices", "-o", "jsonpath={.items[*].spec.nodeName}")
        assert "gpu-node-0" in slices.split()

        # An extra process joins the same supervision (how the operator and drivers are added).
        extra = subprocess.run(
            [
                sys.executable,
                "-c",
                "from grove.sandbox import Sandbox; import sys;"
                "r = Sandbox().start_extra('sleeper', ['sleep', '300']); print(r.pid)",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        pids["sleeper"] = int(extra.stdout.strip())
        assert psutil.pid_exists(pids["sleeper"])
        status = _grove("sandbox", "status", env=env)
        assert "sleeper" in status.stdout and status.stdout.count("alive") == 8

        again = _grove("sandbox", "up", env=env)  # idempotent: reports the running sandbox
        assert again.returncode == 0 and "already running" in again.stderr
    finally:
        down = _grove("sandbox", "down", env=env)
    assert down.returncode == 0, down.stderr
    for name, pid in pids.items():
        alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        assert not alive, f"{name} (pid {pid}) survived `grove sandbox down`"
    assert not (tmp_path / "sandbox" / "state.json").exists()
    assert _grove("sandbox", "status", env=env).returncode == 1
