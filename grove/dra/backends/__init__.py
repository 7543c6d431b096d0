"""Device backends: ``nvml`` for real GPUs, ``simulated`` for KWOK nodes and tests."""

from __future__ import annotations

from pathlib import Path

from grove.dra.backends.base import BackendError, ContainerEdits, DeviceBackend, DeviceHealth

__all__ = ["BackendError", "ContainerEdits", "DeviceBackend", "DeviceHealth", "make_backend"]


def make_backend(
    kind: str,
    node: str,
    state_dir: Path,
    simulated_config: Path | None = None,
    driver_root: Path = Path("/"),
    host_driver_root: Path | None = None,
) -> DeviceBackend:
    """Construct the backend named on the command line (imports NVML only when asked for)."""
    if kind == "simulated":
        from grove.dra.backends.simulated import SimulatedBackend

        return SimulatedBackend(node, simulated_config, state_dir)
    if kind == "nvml":
        from grove.dra.backends.nvml import NvmlBackend

        return NvmlBackend(state_dir=state_dir, driver_root=driver_root, host_driver_root=host_driver_root)
    raise ValueError(f"unknown backend {kind!r}")
