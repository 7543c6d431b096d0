"""Simulated GPUs for KWOK nodes and tests: same device model as NVML, no hardware.

Config (YAML), per node with defaults::

    defaults: {model: H100-80GB, count: 2}
    driverVersion: "570.133.20"        # optional
    cudaDriverVersion: "12.8"          # optional
    nodes:
      kwok-node-1:
        count: 4
        migLayout: {0: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}   # GPU index -> static MIG devices
        unhealthy: [gpu-3]                                    # a failed GPU (critical XID 79)
      kwok-node-2:
        unhealthy: {gpu-0: 48, gpu-1: 31, gpu-2: gpu-lost, gpu-3: unmonitored}   # XIDs or NVIDIA's other faults

``unhealthy`` is the simulated hardware's fault state, re-read on every health check: editing the file makes a
GPU fail (or recover) while the driver runs, and its devices get the taints NVIDIA's driver would set
(``grove.dra.healthtaints``). A file that cannot be read marks every device ``unmonitored``.

UUIDs derive from the node name so they are stable across restarts. Prepared devices are recorded in
``<state_dir>/simulated-devices.json`` (device -> claim UID) so the backend, like real hardware with
exclusive access, refuses a device that another claim holds; every completed prepare is appended to
``simulated-prepare.log`` so tests can prove nothing was prepared twice. Sharing settings a real GPU
would get (time slice, compute mode) are recorded in ``gpu-settings.json``, and MPS control daemons are
real stand-in processes (``grove.dra.mps_standin``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from grove.dra import healthtaints as ht
from grove.dra.backends.base import BackendError, ContainerEdits, DeviceHealth, GpuSettings, device_env
from grove.dra.backends.catalog import MODELS, place
from grove.dra.devices import AllocatableDevice, GpuInfo
from grove.dra.fsutil import atomic_write
from grove.dra.mps import MpsLauncher, StandinLauncher
from grove.dra.opaqueconfig import DeviceConfig

# Test hook: seconds each prepare sleeps before it takes effect (lets fault tests kill mid-prepare).
PREPARE_DELAY_ENV = "GROVE_DRA_SIMULATED_PREPARE_DELAY"
STATE_FILE = "simulated-devices.json"
PREPARE_LOG = "simulated-prepare.log"


def load_node_config(path: Path | None, node: str) -> dict[str, Any]:
    """The merged config for ``node`` (defaults < node entry); an absent file gives 2 H100s."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = yaml.safe_load(path.read_text()) or {}
    cfg: dict[str, Any] = {"model": "H100-80GB", "count": 2, "migLayout": {}, "unhealthy": []}
    cfg.update(raw.get("defaults") or {})
    cfg.update((raw.get("nodes") or {}).get(node) or {})
    cfg.setdefault("driverVersion", raw.get("driverVersion", "570.133.20"))
    cfg.setdefault("cudaDriverVersion", raw.get("cudaDriverVersion", "12.8"))
    if cfg["model"] not in MODELS:
        raise ValueError(f"unknown simulated GPU model {cfg['model']!r} (known: {', '.join(MODELS)})")
    return cfg


def _stable_uuid(prefix: str, *parts: object) -> str:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return f"{prefix}-{uuid.UUID(bytes=digest[:16])}"


class SimulatedBackend:
    """A ``DeviceBackend`` whose hardware is a YAML file."""

    name = "simulated"

    def __init__(self, node: str, config_path: Path | None, state_dir: Path) -> None:
        self.node = node
        self.config_path = config_path
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self.config = load_node_config(config_path, node)
        self.settings = GpuSettings(state_dir / "gpu-settings.json")
        self.mps_launcher: MpsLauncher = StandinLauncher()

    def discover(self) -> list[AllocatableDevice]:
        cfg, model = self.config, MODELS[self.config["model"]]
        layout = {int(k): list(v) for k, v in (cfg.get("migLayout") or {}).items()}
        devices: list[AllocatableDevice] = []
        for i in range(int(cfg["count"])):
            gpu = GpuInfo(
                minor=i,
                index=i,
                uuid=_stable_uuid("GPU", self.node, i),
                product_name=model.product_name,
                brand=model.brand,
                architecture=model.architecture,
                cuda_compute_capability=model.cuda_compute_capability,
                driver_version=str(cfg["driverVersion"]),
                cuda_driver_version=str(cfg["cudaDriverVersion"]),
                memory_mib=model.memory_mib,
                pci_bus_id=f"0000:{0x18 + 0x10 * i:02x}:00.0",
                mig_enabled=i in layout,
                pcie_root=f"pci0000:{0x10 + 0x10 * i:02x}",
                numa_node=0 if i < (int(cfg["count"]) + 1) // 2 else 1,  # two sockets, GPUs split evenly
            )
            if i not in layout:
                devices.append(AllocatableDevice(gpu=gpu))
                continue
            for j, (profile, start) in enumerate(place(model, layout[i])):
                devices.append(
                    AllocatableDevice(
                        gpu=gpu,
                        mig_profile=profile,
                        mig_uuid=_stable_uuid("MIG", self.node, i, j),
                        mig_placement_start=start,
                        mig_gi_id=j + 1,
                        mig_ci_id=0,
                        mig_index=j,
                    )
                )
        return devices

    def common_edits(self) -> ContainerEdits:
        return ContainerEdits(env=[f"GROVE_DRA_SIMULATED_NODE={self.node}", "NVIDIA_VISIBLE_DEVICES=void"])

    # -- bookkeeping -----------------------------------------------------------------------------
    def _state(self) -> dict[str, str]:
        p = self.state_dir / STATE_FILE
        return json.loads(p.read_text()) if p.exists() else {}

    def _save(self, state: dict[str, str]) -> None:
        # simulated hardware state: atomic against SIGKILL, no fsync (it models no real device)
        atomic_write(self.state_dir / STATE_FILE, json.dumps(state, sort_keys=True).encode(), durable=False)

    def prepare(self, claim_uid: str, device: AllocatableDevice, config: DeviceConfig) -> ContainerEdits:
        delay = float(os.environ.get(PREPARE_DELAY_ENV, "0") or 0)
        if delay > 0:
            time.sleep(delay)
        with self._lock:
            state = self._state()
            owner = state.get(device.name)
            if owner is not None and owner != claim_uid:
                raise BackendError(f"device {device.name} is already prepared for claim {owner}")
            if owner is None:
                state[device.name] = claim_uid
                self._save(state)
                with (self.state_dir / PREPARE_LOG).open("a") as log:
                    log.write(f"{claim_uid} {device.name}\n")
            if config.strategy == "TimeSlicing" and device.type == "gpu":
                self.settings.set(device.name, claim_uid, "DEFAULT", config.time_slice_interval or "Default")
            elif config.strategy == "MPS":
                self.settings.set(device.name, claim_uid, "EXCLUSIVE_PROCESS", "Default")
        return ContainerEdits(env=device_env(device, config))

    def unprepare(self, claim_uid: str, device_name: str) -> None:
        with self._lock:
            state = self._state()
            if state.get(device_name) == claim_uid:
                del state[device_name]
                self._save(state)
            self.settings.pop(device_name, claim_uid)

    def reset(self, active: dict[str, str]) -> None:
        """Forget preparations the driver no longer knows about (after a reboot or checkpoint rebuild)."""
        with self._lock:
            state = self._state()
            kept = {dev: uid for dev, uid in state.items() if active.get(dev) == uid}
            if kept != state:
                self._save(kept)
            for dev, entry in self.settings.load().items():
                if active.get(dev) != entry.get("claim"):
                    self.settings.pop(dev)

    def health(self) -> dict[str, DeviceHealth]:
        try:
            faults = simulated_faults(load_node_config(self.config_path, self.node).get("unhealthy"))
        except (OSError, ValueError, yaml.YAMLError) as e:
            lost = DeviceHealth(True, f"simulated config unreadable: {e}", (ht.unmonitored(),))
            return {d.name: lost for d in self.discover()}
        return {d.name: DeviceHealth.of(faults.get(d.name, ())) for d in self.discover()}

    def start_health_monitor(self, stop: threading.Event, changed: Callable[[], None]) -> None:
        """Nothing to watch: ``health()`` re-reads the config file each time."""


def simulated_faults(spec: Any) -> dict[str, tuple[ht.HealthTaint, ...]]:
    """Device name -> taints, from the ``unhealthy`` config: a list of device names (critical XID 79), or a
    mapping device -> XID number, ``gpu-lost`` or ``unmonitored``."""
    if not spec:
        return {}
    entries = {str(name): ht.DEFAULT_XID for name in spec} if isinstance(spec, list) else spec
    if not isinstance(entries, dict):
        raise ValueError(f"unhealthy: expected a list of device names or a mapping, got {spec!r}")
    out: dict[str, tuple[ht.HealthTaint, ...]] = {}
    for name, fault in entries.items():
        if fault == ht.GPU_LOST:
            out[str(name)] = (ht.gpu_lost(),)
        elif fault == ht.UNMONITORED:
            out[str(name)] = (ht.unmonitored(),)
        elif isinstance(fault, int) and not isinstance(fault, bool) and fault > 0:
            out[str(name)] = (ht.xid(fault),)
        else:
            raise ValueError(f"unhealthy.{name}: {fault!r} is not an XID number, 'gpu-lost' or 'unmonitored'")
    return out
