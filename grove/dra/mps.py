"""MPS control daemons: one per shared claim, started, owned and stopped by the driver.

NVIDIA's driver runs ``nvidia-cuda-mps-control -d`` per claim (a Deployment named
``mps-control-daemon-<id>``, id = ``<claimUID>-<sha256(uuids)[:5]>``) with per-daemon pipe, log and shm
directories that the CDI spec bind-mounts into the containers. Here the driver runs the daemon itself
as a process in its own session, so a driver crash does not take the daemon (and the running pods'
GPU contexts) down, exactly like the Deployment. Every daemon carries two environment markers
(``GROVE_DRA_MPS_ROOT`` = the driver's MPS root, ``GROVE_DRA_MPS_DAEMON`` = its id), so after a crash the
next start finds every daemon of this driver by reading ``/proc/<pid>/environ``, whether or not its pid
made it into the checkpoint: wanted ones are adopted (restarted if dead), the rest are killed and their
directories removed (issue 12: no orphan daemon, no leaked file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

ROOT_ENV = "GROVE_DRA_MPS_ROOT"
ID_ENV = "GROVE_DRA_MPS_DAEMON"
SETTINGS_ENV = "GROVE_DRA_MPS_SETTINGS"
CONTAINER_PIPE_DIR = "/tmp/nvidia-mps"  # NVIDIA's CUDA_MPS_PIPE_DIRECTORY inside containers
CONTAINER_LOG_DIR = "/var/log/nvidia-mps"
CONTAINER_SHM_DIR = "/dev/shm"
MOUNT_OPTIONS = ["rw", "nosuid", "nodev", "bind"]


def daemon_id(claim_uid: str, uuids: list[str]) -> str:
    """NVIDIA's ``GetMpsControlDaemonID``."""
    return f"{claim_uid}-{hashlib.sha256(','.join(uuids).encode()).hexdigest()[:5]}"


@dataclass
class MpsDaemon:
    """What the checkpoint records about one daemon (enough to restart or clean it)."""

    id: str
    uuids: list[str]
    active_thread_percentage: int | None = None
    pinned_memory_limits: dict[str, str] = field(default_factory=dict)  # UUID -> "<n>M"
    multi_user: bool = False  # validated (Volta or newer) and recorded; like NVIDIA's, no daemon flag follows
    pid: int | None = None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MpsDaemon:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def client_env(self) -> list[str]:
        """Env for the containers: where the daemon is, and the limits as client-side defaults."""
        env = [f"CUDA_MPS_PIPE_DIRECTORY={CONTAINER_PIPE_DIR}", f"CUDA_MPS_LOG_DIRECTORY={CONTAINER_LOG_DIR}"]
        if self.active_thread_percentage is not None:
            env.append(f"CUDA_MPS_ACTIVE_THREAD_PERCENTAGE={self.active_thread_percentage}")
        if self.pinned_memory_limits:
            # client ordinals follow the claim's device order (CUDA_VISIBLE_DEVICES of the daemon)
            limits = [f"{i}={self.pinned_memory_limits[u]}" for i, u in enumerate(self.uuids)
                      if u in self.pinned_memory_limits]
            env.append(f"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT={','.join(limits)}")
        return env


class MpsLauncher(Protocol):
    """How a backend runs the daemon: ``argv`` is started detached with ``env``; ``configure`` runs after."""

    def argv(self, d: MpsDaemon) -> list[str]: ...

    def configure(self, d: MpsDaemon, env: dict[str, str]) -> None: ...

    def shutdown(self, d: MpsDaemon, env: dict[str, str]) -> None: ...


class StandinLauncher:
    """Simulated nodes: ``grove.dra.mps_standin``, a real process with the daemon's files and lifetime."""

    def argv(self, d: MpsDaemon) -> list[str]:
        return [sys.executable, "-m", "grove.dra.mps_standin"]

    def configure(self, d: MpsDaemon, env: dict[str, str]) -> None:
        """The stand-in reads its settings from the environment."""

    def shutdown(self, d: MpsDaemon, env: dict[str, str]) -> None:
        """SIGTERM (sent by the manager) is its quit command."""


class ControlDaemonLauncher:
    """Real GPUs: ``nvidia-cuda-mps-control -d``, then the defaults NVIDIA's template sets, then ``quit``."""

    def __init__(self, control: str = "nvidia-cuda-mps-control") -> None:
        self.control = control

    def argv(self, d: MpsDaemon) -> list[str]:
        return [self.control, "-d"]

    def _send(self, command: str, env: dict[str, str]) -> None:
        r = subprocess.run([self.control], input=command + "\n", env=env, capture_output=True, text=True,
                           timeout=30, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{self.control}: {command!r} failed: {r.stderr.strip() or r.stdout.strip()}")

    def configure(self, d: MpsDaemon, env: dict[str, str]) -> None:
        if d.active_thread_percentage is not None:
            self._send(f"set_default_active_thread_percentage {d.active_thread_percentage}", env)
        for uuid, limit in sorted(d.pinned_memory_limits.items()):
            self._send(f"set_default_device_pinned_mem_limit {uuid} {limit}", env)

    def shutdown(self, d: MpsDaemon, env: dict[str, str]) -> None:
        try:
            self._send("quit", env)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            log.warning("MPS daemon %s did not quit cleanly (%s); killing it", d.id, e)


def read_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


class MpsManager:
    """Daemons of one driver under ``root`` (``<plugin-data-dir>/mps``)."""

    def __init__(self, root: Path, launcher: MpsLauncher) -> None:
        self.root = root
        self.launcher = launcher
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def dirs(self, d: MpsDaemon) -> dict[str, Path]:
        base = self.root / d.id
        return {"root": base, "pipe": base / "pipe", "log": base / "log", "shm": base / "shm"}

    def _env(self, d: MpsDaemon) -> dict[str, str]:
        dirs = self.dirs(d)
        env = {
            **os.environ,
            "CUDA_VISIBLE_DEVICES": ",".join(d.uuids),
            "CUDA_MPS_PIPE_DIRECTORY": str(dirs["pipe"]),
            "CUDA_MPS_LOG_DIRECTORY": str(dirs["log"]),
            ROOT_ENV: str(self.root),
            ID_ENV: d.id,
            SETTINGS_ENV: json.dumps(d.to_json() | {"pid": None}, sort_keys=True),
        }
        return env

    def running(self) -> dict[str, list[int]]:
        """Daemon id -> live pids of this driver's daemons, found by their environment markers."""
        out: dict[str, list[int]] = {}
        me = os.getpid()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            env = read_environ(int(entry.name))
            if env.get(ROOT_ENV) == str(self.root) and env.get(ID_ENV):
                out.setdefault(env[ID_ENV], []).append(int(entry.name))
        return out

    def start(self, d: MpsDaemon) -> int:
        """Start ``d`` unless it already runs (idempotent); returns its pid."""
        pids = self.running().get(d.id)
        if pids:
            return min(pids)
        for p in self.dirs(d).values():
            p.mkdir(parents=True, exist_ok=True)
        env = self._env(d)
        logf = (self.dirs(d)["log"] / "daemon.out").open("ab")
        proc = subprocess.Popen(self.launcher.argv(d), env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)
        logf.close()
        self._children[proc.pid] = proc
        pid = self._wait_running(d, proc)
        self.launcher.configure(d, env)
        log.info("started MPS control daemon %s (pid %d) for %s", d.id, pid, ",".join(d.uuids))
        return pid

    def _wait_running(self, d: MpsDaemon, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
        """The daemon's pid once it is ready: it runs (``-d`` forks: the pid is the child's, found by its
        marker) and has created its ``control`` pipe, which is what CUDA clients connect to."""
        deadline = time.monotonic() + timeout
        control = self.dirs(d)["pipe"] / "control"
        while time.monotonic() < deadline:
            pids = self.running().get(d.id)
            if pids and control.exists():
                return min(pids)
            if proc.poll() not in (None, 0):
                break
            time.sleep(0.01)
        out = (self.dirs(d)["log"] / "daemon.out").read_text(errors="replace")[-500:]
        raise RuntimeError(f"MPS control daemon {d.id} did not start (exit {proc.poll()}): {out}")

    def stop(self, daemon_id_: str, d: MpsDaemon | None = None) -> None:
        """Stop the daemon (quit, then SIGTERM, then SIGKILL) and remove its directories."""
        if d is not None and self.running().get(daemon_id_):
            self.launcher.shutdown(d, self._env(d))
        self.kill(self.running().get(daemon_id_, []))
        shutil.rmtree(self.root / daemon_id_, ignore_errors=True)

    def kill(self, pids: list[int]) -> None:
        """SIGTERM, then SIGKILL, each pid that still is one of our daemons (a recycled pid is left alone)."""
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            live = [p for p in pids if self._alive(p)]
            for p in live:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, sig)
            deadline = time.monotonic() + wait
            while live and time.monotonic() < deadline:
                live = [p for p in live if self._alive(p)]
                time.sleep(0.01)
            if not live:
                return

    def _alive(self, pid: int) -> bool:
        child = self._children.get(pid)
        if child is not None:  # our child: reap it, or it lingers as a zombie
            if child.poll() is not None:
                del self._children[pid]
                return False
            return True
        return read_environ(pid).get(ROOT_ENV) == str(self.root)  # gone, a zombie, or a recycled pid: not ours

    def reconcile(self, wanted: dict[str, MpsDaemon]) -> dict[str, int]:
        """After a restart: kill and clean daemons not in ``wanted``; (re)start wanted ones.

        Returns id -> pid of the wanted daemons."""
        for did, pids in self.running().items():
            if did not in wanted:
                log.warning("stopping orphaned MPS control daemon %s (pids %s)", did, pids)
                self.kill(pids)
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.is_dir() and p.name not in wanted:
                    log.warning("removing directories of MPS daemon %s (no prepared claim uses it)", p.name)
                    shutil.rmtree(p, ignore_errors=True)
        return {did: self.start(d) for did, d in wanted.items()}
