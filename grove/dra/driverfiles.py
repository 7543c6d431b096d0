"""The NVIDIA driver's user-space files a CUDA container needs, found as the container toolkit finds them.

NVIDIA's driver generates its CDI specs with the container toolkit (``nvcdi``, mode ``nvml``): the
directory holding ``libcuda.so.<driverVersion>`` is searched for every ``*.so.<driverVersion>``
library, a fixed list of binaries is looked up in the usual bin directories, the GSP firmware of that
version is added, and ``nvidia-cdi-hook`` (when installed) creates the ``.so.1`` symlinks and refreshes
the container's ld cache. Paths are found under ``driver_root`` (``/`` or ``/run/nvidia/driver`` with
the GPU Operator) and mounted at the same path without that prefix inside the container. When the
driver itself runs in a container, ``root`` is where the host's driver root is mounted (``/driver-root``)
and ``host_root`` the host path it came from, which the runtime needs in the CDI spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

LIBRARY_DIRS = (
    "usr/lib64",
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "lib64",
    "lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "usr/lib",
    "lib",
)
BIN_DIRS = ("usr/bin", "usr/local/bin", "bin", "usr/sbin", "sbin")
BINARIES = (
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
)
MOUNT_OPTIONS = ["ro", "nosuid", "nodev", "rbind", "rprivate"]
HOOK_BINARIES = ("nvidia-cdi-hook", "nvidia-ctk")


def _mount(root: Path, found: Path, host_root: Path) -> dict[str, Any]:
    rel = found.relative_to(root)
    return {"hostPath": str(host_root / rel), "containerPath": "/" + str(rel), "options": list(MOUNT_OPTIONS)}


def find_binary(root: Path, name: str) -> Path | None:
    for d in BIN_DIRS:
        p = root / d / name
        if p.is_file():
            return p
    return None


def library_dir(root: Path, driver_version: str) -> Path | None:
    """The directory holding ``libcuda.so.<driverVersion>`` (where the toolkit looks for the rest)."""
    return next((root / d for d in LIBRARY_DIRS if (root / d / f"libcuda.so.{driver_version}").is_file()), None)


def driver_files(
    root: Path, driver_version: str, host_root: Path | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """CDI ``mounts`` and ``hooks`` for the driver of ``driver_version`` under ``root``."""
    host = host_root or root
    mounts: list[dict[str, Any]] = []
    lib_dir = library_dir(root, driver_version)
    libs: list[Path] = sorted(lib_dir.glob(f"*.so.{driver_version}")) if lib_dir is not None else []
    mounts += [_mount(root, p, host) for p in libs]
    mounts += [_mount(root, p, host) for name in BINARIES if (p := find_binary(root, name)) is not None]
    fw = root / "lib/firmware/nvidia" / driver_version
    if fw.is_dir():
        mounts += [_mount(root, p, host) for p in sorted(fw.glob("gsp*.bin"))]
    hooks: list[dict[str, Any]] = []
    hook = next((p for n in HOOK_BINARIES if (p := find_binary(root, n)) is not None), None)
    if hook is not None and lib_dir is not None:
        cdir = "/" + str(lib_dir.relative_to(root))
        # the hook runs in the host's namespace: its path is the host path
        prefix = [hook.name] if hook.name == "nvidia-cdi-hook" else [hook.name, "hook"]
        links = [f"--link=libcuda.so.1::{cdir}/libcuda.so"]
        hook_path = str(host / hook.relative_to(root))
        hooks.append({"hookName": "createContainer", "path": hook_path, "args": [*prefix, "create-symlinks", *links]})
        hooks.append({"hookName": "createContainer", "path": hook_path,
                      "args": [*prefix, "update-ldcache", "--folder", cdir]})
    return mounts, hooks
