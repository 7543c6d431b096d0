"""Process supervision for the local control plane.

Each component runs in its own session (so its own process group, pgid == pid): stopping it signals the whole
group, and a Ctrl-C in the terminal that started a sandbox does not reach it. Every started process is
described by a `ProcessRecord` whose `create_time` guards against PID reuse: `stop_records()` only ever
signals a PID whose start time still matches, so it can never hit an unrelated process, even long after a
sandbox was started.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

_PR_SET_PDEATHSIG = 1


@dataclass
class ProcessRecord:
    """What we need to find, check and stop a process we started, possibly from another Python process."""

    name: str
    pid: int
    create_time: float
    argv: list[str]
    log: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            argv=[str(a) for a in data.get("argv", [])],
            log=str(data.get("log", "")),
            extra=dict(data.get("extra", {})),
        )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now.

    There is a small window before the component binds it; ports come from the kernel's ephemeral range,
    so two clusters starting at once practically never collide.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """preexec_fn: have the kernel SIGKILL the child if the process that started it dies (even by SIGKILL).

    SIGKILL, not SIGTERM: when etcd goes down at the same moment, kube-apiserver's graceful shutdown can hang
    for many minutes, and nobody is left to escalate. The data is throwaway, so a hard stop loses nothing.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start_process(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = False,
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start `argv` in a new session with stdout+stderr appended to `log_path`.

    `die_with_parent=True` is for test sessions (nothing may outlive pytest, even a killed one); the sandbox
    leaves it off so its processes survive the `grove sandbox up` command that started them.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
            close_fds=True,
        )
    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        create_time = 0.0  # died at once; is_alive() reports it dead and the log says why
    record = ProcessRecord(name=name, pid=proc.pid, create_time=create_time, argv=list(argv), log=str(log_path))
    return proc, record


def _owned(record: ProcessRecord) -> psutil.Process | None:
    """The live process behind `record`, or None if it exited or its PID now belongs to someone else."""
    try:
        p = psutil.Process(record.pid)
        if abs(p.create_time() - record.create_time) > 0.05:
            return None
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return p
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(record: ProcessRecord) -> bool:
    """True if the recorded process is still running (and is still the one we started)."""
    return _owned(record) is not None


def _signal_group(record: ProcessRecord, sig: signal.Signals) -> None:
    proc = _owned(record)
    if proc is None:
        return
    try:
        pgid = os.getpgid(record.pid)
    except ProcessLookupError:
        return
    # Only signal the group if the process leads it (we started it with start_new_session); otherwise the
    # group could be ours or a shell's, and we'd hit more than we started.
    with contextlib.suppress(ProcessLookupError):
        if pgid == record.pid:
            os.killpg(pgid, sig)
        else:
            proc.send_signal(sig)


def stop_records(
    records: Iterable[ProcessRecord],
    *,
    timeout: float = 10.0,
    popens: Mapping[int, subprocess.Popen[bytes]] | None = None,
) -> list[str]:
    """SIGTERM every recorded process group, wait up to `timeout`, then SIGKILL what is left.

    Returns the names of processes that needed SIGKILL (for diagnostics). `popens` lets the owner reap its own
    children so no zombies stay behind.
    """
    records = list(records)
    for rec in records:
        _signal_group(rec, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = [r for r in records if is_alive(r)]
    while pending and time.monotonic() < deadline:
        _reap(popens)
        time.sleep(0.05)
        pending = [r for r in pending if is_alive(r)]
    killed = []
    for rec in pending:
        killed.append(rec.name)
        _signal_group(rec, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(is_alive(r) for r in pending) and time.monotonic() < deadline:
        _reap(popens)
        time.sleep(0.05)
    _reap(popens)
    return killed


def _reap(popens: Mapping[int, subprocess.Popen[bytes]] | None) -> None:
    for p in (popens or {}).values():
        p.poll()


def tail(path: Path | str, lines: int = 40) -> str:
    """Last `lines` lines of a log file (reads only the end: logs can be large)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError as error:
        return f"<cannot read {path}: {error}>"
    return "\n".join(data.splitlines()[-lines:])


def format_logs(records: Iterable[ProcessRecord], lines: int = 40) -> str:
    """The end of every component's log, so a failed start can be diagnosed from the test output alone."""
    parts = []
    for rec in records:
        state = "alive" if is_alive(rec) else "DEAD"
        parts.append(f"===== {rec.name} (pid {rec.pid}, {state}) {rec.log} =====\n{tail(rec.log, lines)}")
    return "\n".join(parts)
