"""Crash-safe file helpers shared by the checkpoint and the CDI writer.

Everything the driver persists is written as temp file + fsync + rename in the same directory, so a
SIGKILL at any point leaves either the old or the new file, plus at worst a temp file that
``remove_stale_temp_files`` deletes at the next start.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

TEMP_MARKER = ".grove-tmp-"

# Test hook: seconds to sleep between writing the temp file and renaming it, so fault tests can
# SIGKILL the driver while a temp file exists. Never set in production.
WRITE_DELAY_ENV = "GROVE_DRA_TEST_ATOMIC_WRITE_DELAY"


def atomic_write(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (readers never see a partial file).

    ``durable`` adds fsync of file and directory (survives power loss, ~1-2 ms each); without it the
    write is still atomic against a killed process, which is all scratch bookkeeping needs.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARKER}", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        delay = float(os.environ.get(WRITE_DELAY_ENV, "0") or 0)
        if delay > 0:
            time.sleep(delay)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (matters for the checkpoint across power loss)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Delete temp files a killed process left behind; returns what was removed."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for p in directory.iterdir():
        if TEMP_MARKER in p.name and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
