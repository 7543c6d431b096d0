"""Unit tests (no cluster) for process supervision: stop exactly what was started, nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from grove.devcluster.processes import (
    ProcessRecord,
    format_logs,
    is_alive,
    start_process,
    stop_records,
    tail,
)

# A child that ignores SIGTERM, to prove stop_records escalates to SIGKILL.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"


def test_start_and_stop_process_group(tmp_path: Path) -> None:
    # The child spawns a grandchild; stopping the group must take both down.
    code = "import subprocess, time; subprocess.Popen(['sleep', '60']); print('ok', flush=True); time.sleep(60)"
    proc, rec = start_process("parent", [sys.executable, "-c", code], tmp_path / "p.log")
    assert os.getpgid(proc.pid) == proc.pid  # own session, own group
    deadline = time.monotonic() + 10
    while not psutil.Process(proc.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchildren = psutil.Process(proc.pid).children()
    assert grandchildren
    assert is_alive(rec)
    killed = stop_records([rec], timeout=5, popens={proc.pid: proc})
    assert killed == []
    assert not is_alive(rec)
    assert proc.returncode == -signal.SIGTERM
    _gone, alive = psutil.wait_procs(grandchildren, timeout=5)
    assert not alive


def test_escalates_to_sigkill(tmp_path: Path) -> None:
    proc, rec = start_process("stubborn", [sys.executable, "-c", STUBBORN], tmp_path / "s.log")
    deadline = time.monotonic() + 10
    while "up" not in (tmp_path / "s.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = stop_records([rec], timeout=0.5, popens={proc.pid: proc})
    assert killed == ["stubborn"]
    assert proc.returncode == -signal.SIGKILL


def test_never_signals_a_reused_pid(tmp_path: Path) -> None:
    # A record whose start time does not match the live PID (PID reuse) must be treated as dead and left alone.
    victim = subprocess.Popen(["sleep", "60"])
    try:
        forged = ProcessRecord("forged", victim.pid, psutil.Process(victim.pid).create_time() - 100, [], "")
        assert not is_alive(forged)
        stop_records([forged], timeout=0.2)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_record_roundtrip_and_logs(tmp_path: Path) -> None:
    proc, rec = start_process(
        "echo", [sys.executable, "-c", "print('\\n'.join(map(str, range(100))))"], tmp_path / "e.log"
    )
    proc.wait(10)
    assert ProcessRecord.from_dict(rec.to_dict()) == rec
    assert tail(rec.log, 3).splitlines() == ["97", "98", "99"]
    assert "===== echo" in format_logs([rec], 2) and "DEAD" in format_logs([rec], 2)
    assert "cannot read" in tail(tmp_path / "missing.log")
