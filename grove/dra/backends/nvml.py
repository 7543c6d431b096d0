"""Real GPUs through NVML (``nvidia-ml-py``), strictly read-only.

Discovers full GPUs and the MIG devices that already exist. It never changes MIG mode or creates or
destroys GPU/compute instances (those need a GPU reset or affect other tenants). A GPU with MIG mode on
offers only its MIG devices (its full form can't be used without disabling MIG).

Sharing is applied as NVIDIA's driver applies it, through ``nvidia-smi`` (issue 12): TimeSlicing sets
compute mode DEFAULT and ``compute-policy --set-timeslice``; MPS sets compute mode EXCLUSIVE_PROCESS
(the daemon itself is run by ``grove.dra.mps`` with ``nvidia-cuda-mps-control -d``). Unprepare resets
both. CDI edits carry the device nodes plus the driver's libraries and binaries as the container
toolkit lists them (``grove.dra.driverfiles``).

The ``nvml`` module and the ``nvidia-smi`` path are injectable so tests can pass fakes.

Health follows NVIDIA's NVMLDeviceHealthCheck (dra.md §3.11): a background thread waits on an NVML event set
registered for XID critical errors on every GPU; an XID event taints the device it names (a MIG device by its
parent UUID and GI/CI ids) with ``gpu.nvidia.com/xid=<code>``, a lost GPU taints every device
``gpu-lost``, and a GPU whose events cannot be registered is ``unmonitored``. Taints are sticky until restart.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from grove.dra import healthtaints as ht
from grove.dra.backends.base import BackendError, ContainerEdits, DeviceHealth, GpuSettings, device_env
from grove.dra.devices import AllocatableDevice, GpuInfo, MigProfile
from grove.dra.driverfiles import driver_files, find_binary, library_dir
from grove.dra.mps import ControlDaemonLauncher, MpsLauncher
from grove.dra.opaqueconfig import INTERVAL_VALUES, DeviceConfig

ARCHITECTURES = {
    2: "Kepler",
    3: "Maxwell",
    4: "Pascal",
    5: "Volta",
    6: "Turing",
    7: "Ampere",
    8: "Ada Lovelace",
    9: "Hopper",
    10: "Blackwell",
    13: "Rubin",
}
BRANDS = {1: "Quadro", 2: "Tesla", 3: "NVS", 5: "GeForce", 6: "Titan", 13: "NvidiaRTX", 14: "Nvidia"}
COMMON_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
# NVML's GPU/compute instance id in an event about a full GPU (not one of its MIG devices).
FULL_GPU_INSTANCE = 0xFFFFFFFF
EVENT_WAIT_MS = 5000

log = logging.getLogger(__name__)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def normalize_bus_id(bus_id: str) -> str:
    """NVML's ``00000000:41:00.0`` -> the 4-digit-domain, lower-case form Kubernetes uses."""
    m = re.match(r"^([0-9a-fA-F]+):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$", bus_id.strip())
    if not m:
        return bus_id.strip().lower()
    dom = int(m.group(1), 16)
    return f"{dom:04x}:{m.group(2).lower()}:{m.group(3).lower()}.{m.group(4)}"


def cuda_version(v: int) -> str:
    """NVML encodes CUDA 12.8 as 12080."""
    return f"{v // 1000}.{(v % 1000) // 10}.0"


def mig_cap_minor(proc_root: Path, parent_minor: int, gi: int, ci: int | None = None) -> int | None:
    """The /dev/nvidia-caps minor of a GI (or CI) access file, if the driver exposes it."""
    p = proc_root / f"driver/nvidia/capabilities/gpu{parent_minor}/mig/gi{gi}"
    p = p / (f"ci{ci}/access" if ci is not None else "access")
    try:
        for line in p.read_text().splitlines():
            if line.startswith("DeviceFileMinor:"):
                return int(line.split(":", 1)[1])
    except OSError:
        return None
    return None


def numa_node(sys_root: Path, bus_id: str) -> int | None:
    """The NUMA node of a PCI device from sysfs (``numa_node``); None when unknown or -1 (no NUMA)."""
    try:
        value = int((sys_root / "bus/pci/devices" / bus_id / "numa_node").read_text().strip())
    except (OSError, ValueError):
        return None
    return value if value >= 0 else None


def addressing_mode(n: Any, h: Any) -> str:
    """NVML's addressing mode as NVIDIA's driver names it (go-nvlib's GetAddressingModeAsString): HMM, ATS or
    None on coherent-memory systems, "" where NVML does not support the query (then it is not published)."""
    try:
        mode = int(n.nvmlDeviceGetAddressingMode(h))
    except n.NVMLError:  # NOT_SUPPORTED: not a coherent-memory platform
        return ""
    names = {
        n.NVML_DEVICE_ADDRESSING_MODE_HMM: "HMM",
        n.NVML_DEVICE_ADDRESSING_MODE_ATS: "ATS",
        n.NVML_DEVICE_ADDRESSING_MODE_NONE: "None",
    }
    return names.get(mode, "")


def pcie_root(sys_root: Path, bus_id: str) -> str:
    """The PCIe root complex (``pci<domain>:<bus>``) above a device, from its sysfs path; "" if unknown."""
    try:
        real = (sys_root / "bus/pci/devices" / bus_id).resolve(strict=True)
    except OSError:
        return ""
    return next((part for part in real.parts if re.fullmatch(r"pci[0-9a-f]{4}:[0-9a-f]{2}", part)), "")


class NvmlBackend:
    """A ``DeviceBackend`` over NVML."""

    name = "nvml"

    def __init__(
        self,
        nvml: ModuleType | Any | None = None,
        proc_root: Path = Path("/proc"),
        sys_root: Path = Path("/sys"),
        state_dir: Path = Path("/var/lib/kubelet/plugins/gpu.nvidia.com"),
        driver_root: Path = Path("/"),
        nvidia_smi: str | None = None,
        host_driver_root: Path | None = None,
    ) -> None:
        if nvml is None:
            import pynvml

            nvml = pynvml
        self.nvml = nvml
        self.proc_root = proc_root
        self.sys_root = sys_root
        self.driver_root = driver_root
        self.host_driver_root = host_driver_root or driver_root
        self.nvidia_smi = nvidia_smi or str(find_binary(driver_root, "nvidia-smi") or "nvidia-smi")
        control = find_binary(driver_root, "nvidia-cuda-mps-control")
        self.mps_launcher: MpsLauncher = ControlDaemonLauncher(str(control or "nvidia-cuda-mps-control"))
        self.settings = GpuSettings(state_dir / "gpu-settings.json")
        self._lock = threading.Lock()
        self._devices: dict[str, AllocatableDevice] = {}
        self._taints: dict[str, tuple[ht.HealthTaint, ...]] = {}  # sticky health taints by device name
        self._taints_lock = threading.Lock()

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """One init/shutdown per operation, like NVIDIA's driver outside DynamicMIG mode."""
        with self._lock:
            self.nvml.nvmlInit()
            try:
                yield self.nvml
            finally:
                self.nvml.nvmlShutdown()

    def _gpu_info(self, n: Any, h: Any, index: int, driver: str, cuda: str) -> GpuInfo:
        major, minor_cc = n.nvmlDeviceGetCudaComputeCapability(h)
        bus = normalize_bus_id(_s(n.nvmlDeviceGetPciInfo(h).busId))
        try:
            mig_on = n.nvmlDeviceGetMigMode(h)[0] == n.NVML_DEVICE_MIG_ENABLE
        except n.NVMLError:
            mig_on = False  # not MIG capable
        return GpuInfo(
            minor=int(n.nvmlDeviceGetMinorNumber(h)),
            index=index,
            uuid=_s(n.nvmlDeviceGetUUID(h)),
            product_name=_s(n.nvmlDeviceGetName(h)),
            brand=BRANDS.get(n.nvmlDeviceGetBrand(h), "Nvidia"),
            architecture=ARCHITECTURES.get(n.nvmlDeviceGetArchitecture(h), "Unknown"),
            cuda_compute_capability=f"{major}.{minor_cc}",
            driver_version=driver,
            cuda_driver_version=cuda,
            memory_mib=int(n.nvmlDeviceGetMemoryInfo(h).total) // (1024 * 1024),
            pci_bus_id=bus,
            mig_enabled=mig_on,
            pcie_root=pcie_root(self.sys_root, bus),
            numa_node=numa_node(self.sys_root, bus),
            addressing_mode=addressing_mode(n, h),
        )

    def _mig_devices(self, n: Any, h: Any, gpu: GpuInfo) -> list[AllocatableDevice]:
        out: list[AllocatableDevice] = []
        for j in range(int(n.nvmlDeviceGetMaxMigDeviceCount(h))):
            try:
                mh = n.nvmlDeviceGetMigDeviceHandleByIndex(h, j)
            except n.NVMLError:
                continue  # slot not populated
            gi_id = int(n.nvmlDeviceGetGpuInstanceId(mh))
            ci_id = int(n.nvmlDeviceGetComputeInstanceId(mh))
            gi_info = n.nvmlGpuInstanceGetInfo(n.nvmlDeviceGetGpuInstanceById(h, gi_id))
            p = n.nvmlDeviceGetGpuInstanceProfileInfoById(h, gi_info.profileId)
            name = _s(p.name).removeprefix("MIG ").strip() or f"{p.sliceCount}g.{round(p.memorySizeMB / 1024)}gb"
            profile = MigProfile(
                name=name,
                gi_profile_id=int(p.id),
                memory_mib=int(p.memorySizeMB),
                multiprocessors=int(p.multiprocessorCount),
                copy_engines=int(p.copyEngineCount),
                decoders=int(p.decoderCount),
                encoders=int(p.encoderCount),
                jpeg_engines=int(p.jpegCount),
                ofa_engines=int(p.ofaCount),
                slice_count=int(p.sliceCount),
            )
            out.append(
                AllocatableDevice(
                    gpu=gpu,
                    mig_profile=profile,
                    mig_uuid=_s(n.nvmlDeviceGetUUID(mh)),
                    mig_placement_start=int(gi_info.placement.start),
                    mig_gi_id=gi_id,
                    mig_ci_id=ci_id,
                    mig_index=j,
                )
            )
        return out

    def discover(self) -> list[AllocatableDevice]:
        devices: list[AllocatableDevice] = []
        with self._session() as n:
            driver = _s(n.nvmlSystemGetDriverVersion())
            cuda = cuda_version(int(n.nvmlSystemGetCudaDriverVersion()))
            for i in range(int(n.nvmlDeviceGetCount())):
                h = n.nvmlDeviceGetHandleByIndex(i)
                gpu = self._gpu_info(n, h, i, driver, cuda)
                devices.extend(self._mig_devices(n, h, gpu) if gpu.mig_enabled else [AllocatableDevice(gpu=gpu)])
        self._devices = {d.name: d for d in devices}
        return devices

    def common_edits(self) -> ContainerEdits:
        versions = {d.gpu.driver_version for d in self._devices.values()}
        mounts, hooks = (
            driver_files(self.driver_root, versions.pop(), self.host_driver_root) if len(versions) == 1 else ([], [])
        )
        # NVIDIA_VISIBLE_DEVICES=void: devices come only through CDI; a legacy-mode nvidia-container-runtime
        # must not inject GPUs of its own (NVIDIA's plugins write the same into their base specs)
        return ContainerEdits(env=["NVIDIA_VISIBLE_DEVICES=void"], device_nodes=list(COMMON_DEVICE_NODES),
                              mounts=mounts, hooks=hooks)

    def _smi(self, *args: str) -> None:
        env = None
        versions = {d.gpu.driver_version for d in self._devices.values()}
        lib = library_dir(self.driver_root, next(iter(versions))) if len(versions) == 1 else None
        if self.driver_root != Path("/") and lib is not None:  # the host's nvidia-smi with the host's NVML
            env = {**os.environ, "LD_LIBRARY_PATH": str(lib)}
        try:
            r = subprocess.run([self.nvidia_smi, *args], capture_output=True, text=True, timeout=60, check=False,
                               env=env)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BackendError(f"{self.nvidia_smi} {' '.join(args)}: {e}") from e
        if r.returncode != 0:
            raise BackendError(f"{self.nvidia_smi} {' '.join(args)} failed: {(r.stderr or r.stdout).strip()}")

    def _apply_sharing(self, claim_uid: str, device: AllocatableDevice, config: DeviceConfig) -> None:
        """NVIDIA's TimeSlicingManager / MPS compute mode, on the physical GPU (MIG: its parent)."""
        gpu = device.gpu.uuid
        if config.strategy == "TimeSlicing" and device.type == "gpu":
            interval = config.time_slice_interval or "Default"
            self._smi("-i", gpu, "-c", "DEFAULT")
            self._smi("compute-policy", "-i", gpu, f"--set-timeslice={INTERVAL_VALUES[interval]}")
            self.settings.set(device.name, claim_uid, "DEFAULT", interval)
        elif config.strategy == "MPS":
            self._smi("-i", gpu, "-c", "EXCLUSIVE_PROCESS")
            self.settings.set(device.name, claim_uid, "EXCLUSIVE_PROCESS", "Default")

    def prepare(self, claim_uid: str, device: AllocatableDevice, config: DeviceConfig) -> ContainerEdits:
        with self._session() as n:
            try:
                n.nvmlDeviceGetHandleByUUID(device.uuid)
            except n.NVMLError as e:
                raise BackendError(f"device {device.name} ({device.uuid}) not found by NVML: {e}") from e
        nodes = [f"/dev/nvidia{device.gpu.minor}"]
        if device.mig_profile is not None:
            for ci in (None, device.mig_ci_id):
                cap = mig_cap_minor(self.proc_root, device.gpu.minor, device.mig_gi_id, ci)
                if cap is None:
                    raise BackendError(f"device {device.name}: MIG capability file for gi{device.mig_gi_id} missing")
                nodes.append(f"/dev/nvidia-caps/nvidia-cap{cap}")
        self._apply_sharing(claim_uid, device, config)
        return ContainerEdits(env=device_env(device, config), device_nodes=nodes)

    def _restore(self, device_name: str, entry: dict[str, object]) -> None:
        d = self._devices.get(device_name)
        if d is None:
            return
        if entry.get("timeSlice") not in (None, "Default"):
            self._smi("compute-policy", "-i", d.gpu.uuid, "--set-timeslice=0")
        if entry.get("computeMode") != "DEFAULT" or entry.get("timeSlice") not in (None, "Default"):
            self._smi("-i", d.gpu.uuid, "-c", "DEFAULT")

    def unprepare(self, claim_uid: str, device_name: str) -> None:
        """Reset the sharing settings prepare applied (NVIDIA resets time slice and compute mode)."""
        entry = self.settings.load().get(device_name)
        if entry is None or entry.get("claim") != claim_uid:
            return
        self._restore(device_name, entry)
        self.settings.pop(device_name, claim_uid)

    def reset(self, active: dict[str, str]) -> None:
        """Reset settings left by claims the driver no longer knows about."""
        for dev, entry in self.settings.load().items():
            if active.get(dev) != entry.get("claim"):
                try:
                    self._restore(dev, entry)
                except BackendError:
                    continue  # keep the entry: retried at the next start
                self.settings.pop(dev)

    # -- health ------------------------------------------------------------------------------------
    def _taint(self, names: Iterable[str], taint: ht.HealthTaint) -> bool:
        """Add ``taint`` to the named devices; whether anything changed."""
        changed = False
        with self._taints_lock:
            for name in names:
                new = ht.merge(self._taints.get(name, ()), taint)
                if new != self._taints.get(name, ()):
                    self._taints[name] = new
                    changed = True
        if changed:
            log.warning("device health: %s on %s", taint.describe(), ", ".join(sorted(names)))
        return changed

    def _devices_of_gpu(self, uuid: str) -> list[str]:
        return [name for name, d in self._devices.items() if d.gpu.uuid == uuid]

    def register_events(self) -> Any:
        """Create an event set for XID critical errors on every discovered GPU (call inside an NVML session);
        a GPU whose events cannot be registered gets the ``unmonitored`` taint on all its devices."""
        n = self.nvml
        event_set = n.nvmlEventSetCreate()
        for uuid in sorted({d.gpu.uuid for d in self._devices.values()}):
            try:
                handle = n.nvmlDeviceGetHandleByUUID(uuid)
                supported = int(n.nvmlDeviceGetSupportedEventTypes(handle))
                if not supported & n.nvmlEventTypeXidCriticalError:
                    raise BackendError("XID events not supported")
                n.nvmlDeviceRegisterEvents(handle, n.nvmlEventTypeXidCriticalError, event_set)
            except (n.NVMLError, BackendError) as error:
                log.warning("cannot watch GPU %s for XID events (%s): its devices are unmonitored", uuid, error)
                self._taint(self._devices_of_gpu(uuid), ht.unmonitored())
        return event_set

    def wait_event(self, event_set: Any, timeout_ms: int = EVENT_WAIT_MS) -> bool:
        """Wait for one NVML event and apply it; whether any device's health changed."""
        n = self.nvml
        try:
            event = n.nvmlEventSetWait_v2(event_set, timeout_ms)
        except n.NVMLError as error:
            if getattr(error, "value", None) == n.NVML_ERROR_GPU_IS_LOST:
                return self._taint(list(self._devices), ht.gpu_lost())
            if getattr(error, "value", None) != n.NVML_ERROR_TIMEOUT:
                log.debug("waiting for NVML events: %s", error)
            return False
        if event.eventType != n.nvmlEventTypeXidCriticalError:
            return False
        try:
            uuid = _s(n.nvmlDeviceGetUUID(event.device))
        except n.NVMLError:
            return self._taint(list(self._devices), ht.gpu_lost())  # what NVIDIA's driver does
        gi, ci = int(event.gpuInstanceId), int(event.computeInstanceId)
        if gi != FULL_GPU_INSTANCE and ci != FULL_GPU_INSTANCE:
            names = [
                name
                for name, d in self._devices.items()
                if d.mig_profile is not None and d.gpu.uuid == uuid and (d.mig_gi_id, d.mig_ci_id) == (gi, ci)
            ]
        else:
            names = [name for name, d in self._devices.items() if d.mig_profile is None and d.gpu.uuid == uuid]
        if not names:
            log.info(
                "XID %d for a device not offered here (UUID %s, GI %d, CI %d): ignored", event.eventData, uuid, gi, ci
            )
            return False
        return self._taint(names, ht.xid(int(event.eventData)))

    def start_health_monitor(self, stop: threading.Event, changed: Callable[[], None]) -> None:
        """A daemon thread holding its own NVML session (NVML counts init/shutdown) waits for events."""

        def run() -> None:
            n = self.nvml
            try:
                n.nvmlInit()
            except Exception as error:
                log.error("NVML unavailable for health events: %s", error)
                if self._taint(list(self._devices), ht.unmonitored()):
                    changed()
                return
            try:
                event_set = self.register_events()
                changed()
                while not stop.is_set():
                    if self.wait_event(event_set):
                        changed()
                n.nvmlEventSetFree(event_set)
            finally:
                n.nvmlShutdown()

        threading.Thread(target=run, name="nvml-health", daemon=True).start()

    def health(self) -> dict[str, DeviceHealth]:
        """The sticky taints from events, plus ``gpu-lost`` for a device NVML no longer finds."""
        try:
            with self._session() as n:
                for name, d in self._devices.items():
                    try:
                        n.nvmlDeviceGetHandleByUUID(d.uuid)
                    except n.NVMLError:
                        self._taint([name], ht.gpu_lost())
        except Exception:
            self._taint(list(self._devices), ht.gpu_lost())
        with self._taints_lock:
            return {name: DeviceHealth.of(self._taints.get(name, ())) for name in self._devices}
