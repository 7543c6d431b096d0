"""Helpers for running `grove driver` as a subprocess in tests (the kubelet side is KubeletClient)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from grove.dra.kubeletclient import KubeletClient
from grove.dra.proto import pluginregistration_v1_pb2 as reg_pb
from grove.dra.proto import pluginregistration_v1_pb2_grpc as reg_grpc

REPO = Path(__file__).resolve().parents[2]
SIM_CONFIG = """
defaults: {model: H100-80GB, count: 2}
nodes:
  node-a: {count: 4}
  node-mig:
    count: 2
    migLayout: {1: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}
"""


def _answers(sock: Path) -> bool:
    with grpc.insecure_channel(f"unix://{sock}") as ch:
        try:
            reg_grpc.RegistrationStub(ch).GetInfo(reg_pb.InfoRequest(), timeout=1)
            return True
        except grpc.RpcError:
            return False


@dataclass
class DriverRun:
    """A `grove driver` subprocess with its directories."""

    root: Path
    node: str
    kubeconfig: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    driver: str = "gpu.nvidia.com"

    @property
    def reg_dir(self) -> Path:
        return self.root / "registry"

    @property
    def data_dir(self) -> Path:
        return self.root / "plugin"

    @property
    def cdi_root(self) -> Path:
        return self.root / "cdi"

    @property
    def log(self) -> Path:
        return self.root / "driver.log"

    def start(self, extra_env: dict[str, str] | None = None, wait: bool = True,
              extra_args: list[str] | None = None) -> DriverRun:
        cfg = self.root / "sim.yaml"
        cfg.write_text(SIM_CONFIG)
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env, **(extra_env or {})}
        # grove.dra.commands directly (not grove.cli): these tests must not depend on other areas' imports;
        # the integration test and the benchmark go through `grove.cli driver`.
        cmd = [
            sys.executable, "-m", "grove.dra.commands", "driver", "--node-name", self.node,
            "--plugin-registration-dir", str(self.reg_dir), "--plugin-data-dir", str(self.data_dir),
            "--cdi-root", str(self.cdi_root), "--backend", "simulated", "--simulated-config", str(cfg),
            "--kubeconfig", str(self.kubeconfig), "--resync-seconds", "2", *(extra_args or []),
        ]
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=REPO)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        sock = self.reg_dir / f"{self.driver}-reg.sock"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"driver exited {self.proc.returncode}:\n{self.log.read_text()}")
            if sock.exists() and _answers(sock):  # a SIGKILLed predecessor leaves a dead socket file
                return
            time.sleep(0.05)
        raise AssertionError(f"driver not ready in {timeout}s:\n{self.log.read_text()}")

    def client(self) -> KubeletClient:
        c = KubeletClient(self.reg_dir, self.driver, timeout=30)
        c.register()
        return c

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)
