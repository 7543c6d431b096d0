"""NVML backend against a fake ``pynvml`` modelled on an 8x H100 node, with and without MIG.

The fake exposes only read functions; any other NVML call (set*, create*, destroy*) raises, so the
tests also prove the backend is read-only.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from grove.dra import healthtaints as ht
from grove.dra.backends.base import BackendError, DeviceBackend
from grove.dra.backends.catalog import H100_MIG
from grove.dra.backends.nvml import NvmlBackend, normalize_bus_id
from grove.dra.opaqueconfig import DeviceConfig


class NVMLError(Exception):
    def __init__(self, value: object = None) -> None:
        super().__init__(str(value))
        self.value = value


FULL = 0xFFFFFFFF  # NVML's GI/CI id in an event about a whole GPU


def xid_event(gpu: int, code: int, gi: int = FULL, ci: int = FULL, kind: int = 8) -> SimpleNamespace:
    """An nvmlEventData_t: NVML names the parent GPU's handle, MIG devices by GI/CI id."""
    return SimpleNamespace(device=("gpu", gpu), eventType=kind, eventData=code, gpuInstanceId=gi,
                           computeInstanceId=ci)


class FakeNvml:
    """Just enough of pynvml. ``mig`` maps GPU index -> [(profile, placementStart, giId)]."""

    NVML_DEVICE_MIG_ENABLE = 1
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_TIMEOUT = 10
    NVML_DEVICE_ADDRESSING_MODE_NONE = 0
    NVML_DEVICE_ADDRESSING_MODE_HMM = 1
    NVML_DEVICE_ADDRESSING_MODE_ATS = 2
    NVML_ERROR_GPU_IS_LOST = 15
    nvmlEventTypeSingleBitEccError = 1
    nvmlEventTypeDoubleBitEccError = 2
    nvmlEventTypeXidCriticalError = 8
    NVMLError = NVMLError

    def __init__(self, count: int = 8, mig: dict[int, list[tuple[str, int, int]]] | None = None) -> None:
        self.count, self.mig = count, mig or {}
        self.inits = 0
        self.calls: list[str] = []
        self.events: queue.Queue[Any] = queue.Queue()  # what nvmlEventSetWait_v2 returns (or raises), in order
        self.registered: dict[int, int] = {}  # GPU index -> registered event mask
        self.no_events: set[int] = set()  # GPUs that support no events (too old)
        self.freed = False

    def nvmlDeviceGetAddressingMode(self, h: Any) -> int:
        raise NVMLError(self.NVML_ERROR_NOT_SUPPORTED)  # an x86 HGX node: not a coherent-memory platform

    def nvmlEventSetCreate(self) -> str:
        assert self.inits >= 1, "NVML used outside an init/shutdown session"
        return "event-set"

    def nvmlDeviceGetSupportedEventTypes(self, h: tuple[str, int]) -> int:
        return 0 if h[1] in self.no_events else 0b1111

    def nvmlDeviceRegisterEvents(self, h: tuple[str, int], mask: int, event_set: str) -> None:
        assert event_set == "event-set"
        self.registered[h[1]] = mask

    def nvmlEventSetWait_v2(self, event_set: str, timeout_ms: int) -> SimpleNamespace:
        try:
            item = self.events.get(timeout=timeout_ms / 1000)
        except queue.Empty:
            raise NVMLError(self.NVML_ERROR_TIMEOUT) from None
        if isinstance(item, Exception):
            raise item
        return item  # type: ignore[no-any-return]

    def nvmlEventSetFree(self, event_set: str) -> None:
        self.freed = True

    def __getattr__(self, name: str) -> Any:  # anything not modelled is a forbidden call
        raise AssertionError(f"backend called unmodelled/mutating NVML function {name}")

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.inits -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "570.133.20"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 12080

    def nvmlDeviceGetCount(self) -> int:
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i: int) -> tuple[str, int]:
        assert self.inits == 1, "NVML used outside an init/shutdown session"
        return ("gpu", i)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> tuple[str, int]:
        for i in range(self.count):
            if uuid == f"GPU-{i:08d}-0000-0000-0000-000000000000":
                return ("gpu", i)
            for j in range(len(self.mig.get(i, []))):
                if uuid == f"MIG-{i}-{j}":
                    return ("mig", i * 100 + j)
        raise NVMLError("Not Found")

    def nvmlDeviceGetUUID(self, h: tuple[str, int]) -> str:
        kind, i = h
        return f"GPU-{i:08d}-0000-0000-0000-000000000000" if kind == "gpu" else f"MIG-{i // 100}-{i % 100}"

    def nvmlDeviceGetName(self, h: Any) -> bytes:
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMinorNumber(self, h: tuple[str, int]) -> int:
        return h[1]

    def nvmlDeviceGetBrand(self, h: Any) -> int:
        return 14

    def nvmlDeviceGetArchitecture(self, h: Any) -> int:
        return 9

    def nvmlDeviceGetCudaComputeCapability(self, h: Any) -> tuple[int, int]:
        return (9, 0)

    def nvmlDeviceGetMemoryInfo(self, h: Any) -> SimpleNamespace:
        return SimpleNamespace(total=81559 * 1024 * 1024)

    def nvmlDeviceGetPciInfo(self, h: tuple[str, int]) -> SimpleNamespace:
        return SimpleNamespace(busId=f"00000000:{0x18 + 0x10 * h[1]:02X}:00.0".encode())

    def nvmlDeviceGetMigMode(self, h: tuple[str, int]) -> list[int]:
        return [1 if h[1] in self.mig else 0, 1 if h[1] in self.mig else 0]

    def nvmlDeviceGetMaxMigDeviceCount(self, h: Any) -> int:
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: tuple[str, int], j: int) -> tuple[str, int]:
        if j >= len(self.mig.get(h[1], [])):
            raise NVMLError("Not Found")
        return ("mig", h[1] * 100 + j)

    def nvmlDeviceGetGpuInstanceId(self, mh: tuple[str, int]) -> int:
        return self.mig[mh[1] // 100][mh[1] % 100][2]

    def nvmlDeviceGetComputeInstanceId(self, mh: Any) -> int:
        return 0

    def nvmlDeviceGetGpuInstanceById(self, h: tuple[str, int], gi: int) -> tuple[int, int]:
        return (h[1], gi)

    def nvmlGpuInstanceGetInfo(self, gih: tuple[int, int]) -> SimpleNamespace:
        name, start, _ = next(m for m in self.mig[gih[0]] if m[2] == gih[1])
        return SimpleNamespace(profileId=H100_MIG[name].profile.gi_profile_id,
                               placement=SimpleNamespace(start=start, size=H100_MIG[name].profile.slice_count))

    def nvmlDeviceGetGpuInstanceProfileInfoById(self, h: Any, profile_id: int) -> SimpleNamespace:
        p = next(r.profile for r in H100_MIG.values() if r.profile.gi_profile_id == profile_id)
        return SimpleNamespace(
            id=p.gi_profile_id, sliceCount=p.slice_count, multiprocessorCount=p.multiprocessors,
            copyEngineCount=p.copy_engines, decoderCount=p.decoders, encoderCount=p.encoders, jpegCount=p.jpeg_engines,
            ofaCount=p.ofa_engines, memorySizeMB=p.memory_mib, name=f"MIG {p.name}".encode(),
        )


def test_full_gpus_without_mig() -> None:
    fake = FakeNvml()
    b = NvmlBackend(nvml=fake)
    assert isinstance(b, DeviceBackend)
    devs = b.discover()
    assert fake.inits == 0, "every nvmlInit must be paired with nvmlShutdown"
    assert [d.name for d in devs] == [f"gpu-{i}" for i in range(8)]
    a = devs[1].to_slice_device()["attributes"]
    assert a["productName"] == {"string": "NVIDIA H100 80GB HBM3"}
    assert a["architecture"] == {"string": "Hopper"}
    assert a["brand"] == {"string": "Nvidia"}
    assert a["cudaComputeCapability"] == {"version": "9.0.0"}
    assert a["driverVersion"] == {"version": "570.133.20"}
    assert a["cudaDriverVersion"] == {"version": "12.8.0"}
    assert a["resource.kubernetes.io/pciBusID"] == {"string": "0000:28:00.0"}
    assert devs[1].to_slice_device()["capacity"]["memory"] == {"value": "81559Mi"}


def test_existing_mig_devices_replace_their_parent() -> None:
    layout = [("3g.40gb", 4, 2), ("2g.20gb", 0, 5), ("1g.10gb", 2, 9), ("1g.10gb", 3, 10)]
    devs = NvmlBackend(nvml=FakeNvml(count=2, mig={0: layout})).discover()
    names = [d.name for d in devs]
    assert names == ["gpu-0-mig-3g40gb-9-4", "gpu-0-mig-2g20gb-14-0", "gpu-0-mig-1g10gb-19-2",
                     "gpu-0-mig-1g10gb-19-3", "gpu-1"]
    mig = devs[0].to_slice_device()
    assert mig["attributes"]["profile"] == {"string": "3g.40gb"}
    assert mig["attributes"]["parentUUID"] == {"string": "GPU-00000000-0000-0000-0000-000000000000"}
    assert mig["attributes"]["uuid"] == {"string": "MIG-0-0"}
    assert mig["capacity"]["multiprocessors"] == {"value": "60"}
    assert devs[0].mig_gi_id == 2


def test_prepare_returns_device_nodes(tmp_path: Path) -> None:
    caps = tmp_path / "driver/nvidia/capabilities/gpu0/mig/gi2"
    (caps / "ci0").mkdir(parents=True)
    (caps / "access").write_text("DeviceFileMinor: 21\nDeviceFileMode: 292\n")
    (caps / "ci0" / "access").write_text("DeviceFileMinor: 22\n")
    b = NvmlBackend(nvml=FakeNvml(count=2, mig={0: [("3g.40gb", 4, 2)]}), proc_root=tmp_path, state_dir=tmp_path)
    mig, gpu = b.discover()
    assert b.prepare("c", gpu, DeviceConfig("GpuConfig")).device_nodes == ["/dev/nvidia1"]
    assert b.prepare("c", mig, DeviceConfig("MigDeviceConfig")).device_nodes == [
        "/dev/nvidia0", "/dev/nvidia-caps/nvidia-cap21", "/dev/nvidia-caps/nvidia-cap22"]
    assert "/dev/nvidiactl" in b.common_edits().device_nodes


def fake_smi(tmp_path: Path, fail: bool = False) -> tuple[str, Path]:
    """An ``nvidia-smi`` that records its arguments (and can fail, like a GPU that refuses a setting)."""
    log = tmp_path / "smi.log"
    smi = tmp_path / "nvidia-smi"
    failing = "echo 'Insufficient Permissions' >&2; exit 4\n" if fail else ""
    smi.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n{failing}")
    smi.chmod(0o755)
    return str(smi), log


def test_time_slicing_and_mps_compute_mode_through_nvidia_smi(tmp_path: Path) -> None:
    smi, log = fake_smi(tmp_path)
    b = NvmlBackend(nvml=FakeNvml(count=2), state_dir=tmp_path, nvidia_smi=smi)
    g0, g1 = b.discover()
    edits = b.prepare("c", g0, DeviceConfig("GpuConfig", strategy="TimeSlicing", time_slice_interval="Long"))
    assert "GROVE_DRA_DEVICE_GPU_0_TIMESLICE_INTERVAL=Long" in edits.env
    b.prepare("c", g1, DeviceConfig("GpuConfig", strategy="MPS"))
    u0, u1 = g0.uuid, g1.uuid
    assert log.read_text().splitlines() == [
        f"-i {u0} -c DEFAULT", f"compute-policy -i {u0} --set-timeslice=3", f"-i {u1} -c EXCLUSIVE_PROCESS"]
    log.unlink()
    b.unprepare("other-claim", "gpu-0")  # not this claim's device: nothing is reset
    assert not log.exists()
    b.unprepare("c", "gpu-0")
    b.unprepare("c", "gpu-1")
    assert log.read_text().splitlines() == [
        f"compute-policy -i {u0} --set-timeslice=0", f"-i {u0} -c DEFAULT", f"-i {u1} -c DEFAULT"]
    assert json.loads((tmp_path / "gpu-settings.json").read_text()) == {}


def test_a_refused_setting_is_a_backend_error(tmp_path: Path) -> None:
    smi, _ = fake_smi(tmp_path, fail=True)
    b = NvmlBackend(nvml=FakeNvml(count=1), state_dir=tmp_path, nvidia_smi=smi)
    with pytest.raises(BackendError, match="Insufficient Permissions"):
        b.prepare("c", b.discover()[0], DeviceConfig("GpuConfig", strategy="TimeSlicing", time_slice_interval="Short"))


def test_cdi_edits_carry_driver_libraries_and_binaries(tmp_path: Path) -> None:
    """A fake driver root laid out like an Ubuntu host with driver 570.133.20."""
    root = tmp_path / "driver-root"
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    for name in ("libcuda.so.570.133.20", "libnvidia-ml.so.570.133.20", "libnvidia-ptxjitcompiler.so.570.133.20",
                 "libcuda.so.1", "libfoo.so.1.2.3"):
        (lib / name).write_text("")
    (root / "usr/bin").mkdir(parents=True)
    for name in ("nvidia-smi", "nvidia-cuda-mps-control", "nvidia-cdi-hook", "unrelated"):
        (root / "usr/bin" / name).write_text("")
    fw = root / "lib/firmware/nvidia/570.133.20"
    fw.mkdir(parents=True)
    (fw / "gsp_ga10x.bin").write_text("")
    b = NvmlBackend(nvml=FakeNvml(count=1), state_dir=tmp_path, driver_root=root)
    b.discover()
    common = b.common_edits()
    mounts = {m["containerPath"]: m for m in common.mounts}
    assert sorted(mounts) == [
        "/lib/firmware/nvidia/570.133.20/gsp_ga10x.bin",
        "/usr/bin/nvidia-cuda-mps-control", "/usr/bin/nvidia-smi",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.570.133.20", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.133.20",
        "/usr/lib/x86_64-linux-gnu/libnvidia-ptxjitcompiler.so.570.133.20"]
    assert mounts["/usr/bin/nvidia-smi"]["hostPath"] == str(root / "usr/bin/nvidia-smi")
    assert "ro" in mounts["/usr/bin/nvidia-smi"]["options"]
    assert [h["args"][1] for h in common.hooks] == ["create-symlinks", "update-ldcache"]
    assert common.hooks[1]["args"][-1] == "/usr/lib/x86_64-linux-gnu"
    assert "NVIDIA_VISIBLE_DEVICES=void" in common.env and "/dev/nvidiactl" in common.device_nodes
    assert b.nvidia_smi == str(root / "usr/bin/nvidia-smi")
    # in a container the host's root is mounted at driver_root: CDI names the host's paths
    c = NvmlBackend(nvml=FakeNvml(count=1), state_dir=tmp_path, driver_root=root, host_driver_root=Path("/"))
    c.discover()
    hosted = {m["containerPath"]: m["hostPath"] for m in c.common_edits().mounts}
    assert hosted["/usr/bin/nvidia-smi"] == "/usr/bin/nvidia-smi"
    assert c.common_edits().hooks[0]["path"] == "/usr/bin/nvidia-cdi-hook"


def test_health_reports_lost_devices() -> None:
    fake = FakeNvml(count=2)
    b = NvmlBackend(nvml=fake)
    b.discover()
    assert all(h.healthy and not h.taints for h in b.health().values())
    fake.count = 1  # GPU fell off the bus
    h = b.health()
    assert h["gpu-0"].healthy and not h["gpu-1"].healthy
    assert h["gpu-1"].taints == (ht.gpu_lost(),)
    fake.count = 2
    assert b.health()["gpu-1"].taints == (ht.gpu_lost(),)  # sticky until the driver restarts, like NVIDIA's


def taints(b: NvmlBackend) -> dict[str, tuple[ht.HealthTaint, ...]]:
    return {name: h.taints for name, h in b.health().items() if h.taints}


def test_xid_events_taint_the_device_they_name() -> None:
    layout = [("3g.40gb", 4, 2), ("1g.10gb", 2, 9)]
    fake = FakeNvml(count=3, mig={0: layout})
    b = NvmlBackend(nvml=fake)
    b.discover()
    fake.nvmlInit()
    event_set = b.register_events()
    assert fake.registered == {0: 8, 1: 8, 2: 8}  # XID critical errors on every GPU (MIG parent included)
    fake.events.put(xid_event(1, 79))
    fake.events.put(xid_event(0, 48, gi=9, ci=0))  # MIG device: parent handle + GI/CI ids
    fake.events.put(xid_event(2, 31))  # an application error: informational
    fake.events.put(xid_event(2, 48, kind=2))  # a double-bit ECC event: not an XID event, ignored
    fake.events.put(xid_event(0, 48, gi=5, ci=0))  # a MIG device not offered here: ignored
    assert [b.wait_event(event_set, 100) for _ in range(6)] == [True, True, True, False, False, False]
    assert taints(b) == {
        "gpu-1": (ht.HealthTaint("xid", "79", "NoSchedule"),),
        "gpu-0-mig-1g10gb-19-2": (ht.HealthTaint("xid", "48", "NoSchedule"),),
        "gpu-2": (ht.HealthTaint("xid", "31", "None"),),
    }
    health = b.health()
    assert not health["gpu-1"].healthy and health["gpu-2"].healthy and health["gpu-0-mig-3g40gb-9-4"].healthy
    # sticky in the critical direction: a later non-fatal XID updates the value, never lowers the effect
    fake.events.put(xid_event(1, 31))
    assert b.wait_event(event_set, 100)
    assert taints(b)["gpu-1"] == (ht.HealthTaint("xid", "31", "NoSchedule"),)
    # a lost GPU: every device
    fake.events.put(NVMLError(fake.NVML_ERROR_GPU_IS_LOST))
    assert b.wait_event(event_set, 100)
    assert all(ht.gpu_lost() in t for t in taints(b).values()) and len(taints(b)) == 4
    fake.nvmlShutdown()


def test_gpus_without_events_are_unmonitored() -> None:
    fake = FakeNvml(count=2)
    fake.no_events = {1}
    b = NvmlBackend(nvml=fake)
    b.discover()
    fake.nvmlInit()
    b.register_events()
    fake.nvmlShutdown()
    assert fake.registered == {0: 8}
    assert taints(b) == {"gpu-1": (ht.HealthTaint("unmonitored", "", "None"),)}
    assert b.health()["gpu-1"].healthy  # informational: the scheduler still uses it


def test_health_monitor_thread_reports_changes() -> None:
    fake = FakeNvml(count=2)
    b = NvmlBackend(nvml=fake)
    b.discover()
    stop, changed = threading.Event(), threading.Event()
    b.start_health_monitor(stop, changed.set)
    assert changed.wait(5)  # registered (the first publication may carry unmonitored taints)
    changed.clear()
    fake.events.put(xid_event(0, 94))
    assert changed.wait(5)
    assert taints(b) == {"gpu-0": (ht.HealthTaint("xid", "94", "NoSchedule"),)}
    stop.set()
    fake.events.put(NVMLError(fake.NVML_ERROR_TIMEOUT))  # wake the waiting thread
    for _ in range(50):
        if fake.freed and fake.inits == 0:
            break
        threading.Event().wait(0.1)
    assert fake.freed and fake.inits == 0, "the monitor frees its event set and ends its NVML session"


def test_pcie_root_from_sysfs(tmp_path: Path) -> None:
    dev = tmp_path / "devices/pci0000:20/0000:20:01.0/0000:28:00.0"
    dev.mkdir(parents=True)
    (tmp_path / "bus/pci/devices").mkdir(parents=True)
    (tmp_path / "bus/pci/devices/0000:28:00.0").symlink_to(dev)
    devs = NvmlBackend(nvml=FakeNvml(count=2), sys_root=tmp_path).discover()
    attrs = [d.to_slice_device()["attributes"] for d in devs]
    assert attrs[1]["resource.kubernetes.io/pcieRoot"] == {"string": "pci0000:20"}
    assert "resource.kubernetes.io/pcieRoot" not in attrs[0]  # unknown in sysfs: attribute omitted


def test_bus_id_normalization() -> None:
    assert normalize_bus_id("00000000:41:00.0") == "0000:41:00.0"
    assert normalize_bus_id("0000:AB:00.1") == "0000:ab:00.1"
