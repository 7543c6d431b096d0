"""Stand-in for ``nvidia-cuda-mps-control`` on simulated nodes: a real process with the daemon's files.

It creates what the real daemon creates in its directories (a ``control`` pipe in the pipe directory,
``control.log`` in the log directory, with the settings it was given), runs until SIGTERM, then removes
the pipe, like ``quit``. Its lifetime is what the driver's ownership and crash-cleanup are tested on.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from types import FrameType

from grove.dra.mps import SETTINGS_ENV


def main() -> int:
    pipe = Path(os.environ["CUDA_MPS_PIPE_DIRECTORY"])
    logdir = Path(os.environ["CUDA_MPS_LOG_DIRECTORY"])
    control = pipe / "control"
    if not control.exists():
        os.mkfifo(control)
    (pipe / "nvidia-cuda-mps-control.pid").write_text(f"{os.getpid()}\n")
    settings = json.loads(os.environ.get(SETTINGS_ENV, "{}"))
    with (logdir / "control.log").open("a") as f:
        f.write(f"[{time.time():.3f}] startup: CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')} "
                f"settings={json.dumps(settings, sort_keys=True)}\n")
    stop = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    while not stop:
        signal.pause()
    control.unlink(missing_ok=True)
    (pipe / "nvidia-cuda-mps-control.pid").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
