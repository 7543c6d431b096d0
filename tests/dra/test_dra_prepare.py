"""The prepare/unprepare state machine, in process (no sockets): idempotency, errors, recovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grove.dra.backends.simulated import PREPARE_LOG, STATE_FILE, SimulatedBackend
from grove.dra.cdi import CdiWriter
from grove.dra.checkpoint import STARTED, CheckpointStore, ClaimRecord
from grove.dra.claims import ClaimError
from grove.dra.opaqueconfig import default_for
from grove.dra.prepare import ClaimRef, Preparer

DRV, NODE = "gpu.nvidia.com", "node-a"


class Claims:
    """In-memory ClaimReader."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, name: str, devices: list[str], config: list[dict[str, Any]] | None = None,
            uid: str | None = None, allocated: bool = True) -> ClaimRef:
        uid = uid or f"uid-{name}"
        results = [{"request": "gpus", "driver": DRV, "pool": NODE, "device": d} for d in devices]
        status = {"allocation": {"devices": {"results": results, "config": config or []}}} if allocated else {}
        self.items[("ns", name)] = {"metadata": {"namespace": "ns", "name": name, "uid": uid}, "status": status}
        return ClaimRef("ns", uid, name)

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.items:
            raise ClaimError(f"ResourceClaim {namespace}/{name} not found")
        return self.items[(namespace, name)]


def make(tmp_path: Path, claims: Claims, boot: str = "boot-1") -> Preparer:
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("nodes: {node-a: {count: 4, migLayout: {3: [3g.40gb, 3g.40gb]}}}\n")
    backend = SimulatedBackend(NODE, cfg, tmp_path / "data")
    p = Preparer(DRV, NODE, backend, claims, CdiWriter(tmp_path / "cdi", DRV),
                 CheckpointStore(tmp_path / "data" / "checkpoint.json", boot_id=boot), tmp_path / "data",
                 backend.discover())
    p.startup()
    return p


def prepare_log(tmp_path: Path) -> list[str]:
    p = tmp_path / "data" / PREPARE_LOG
    return p.read_text().splitlines() if p.exists() else []


def test_prepare_is_idempotent_and_unprepare_cleans(tmp_path: Path) -> None:
    claims = Claims()
    ref = claims.add("c1", ["gpu-0", "gpu-1"])
    p = make(tmp_path, claims)
    first = p.prepare([ref])[ref.uid]
    assert first.error == ""
    assert [d["cdiDeviceIds"] for d in first.devices] == [
        [f"k8s.gpu.nvidia.com/claim={ref.uid}-gpu-0"], [f"k8s.gpu.nvidia.com/claim={ref.uid}-gpu-1"]]
    assert first.devices[0]["requestNames"] == ["gpus"] and first.devices[0]["poolName"] == NODE
    assert p.prepare([ref])[ref.uid].devices == first.devices
    # a restarted driver (new Preparer over the same dirs) returns the same result without re-preparing
    assert make(tmp_path, claims).prepare([ref])[ref.uid].devices == first.devices
    assert prepare_log(tmp_path) == [f"{ref.uid} gpu-0", f"{ref.uid} gpu-1"]
    assert (tmp_path / "cdi" / f"k8s.gpu.nvidia.com-claim_{ref.uid}.json").exists()
    assert p.unprepare([ref]) == {ref.uid: ""}
    assert p.unprepare([ref]) == {ref.uid: ""}  # idempotent
    assert list((tmp_path / "cdi").iterdir()) == []
    assert json.loads((tmp_path / "data" / STATE_FILE).read_text()) == {}


def test_per_claim_errors_do_not_affect_other_claims(tmp_path: Path) -> None:
    claims = Claims()
    good = claims.add("good", ["gpu-0"])
    replaced = claims.add("replaced", ["gpu-1"])
    unalloc = claims.add("unalloc", ["gpu-2"], allocated=False)
    bad_cfg = claims.add("badcfg", ["gpu-2"], config=[{"source": "FromClaim", "requests": [], "opaque": {
        "driver": DRV, "parameters": {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "GpuConfig",
                                      "sharing": {"strategy": "Sometimes"}}}}])
    elsewhere = claims.add("elsewhere", ["gpu-9"])
    missing = ClaimRef("ns", "uid-missing", "missing")
    p = make(tmp_path, claims)
    out = p.prepare([good, ClaimRef("ns", "other-uid", "replaced"), unalloc, bad_cfg, elsewhere, missing])
    assert out[good.uid].error == ""
    assert "claim was replaced" in out["other-uid"].error and replaced.uid != "other-uid"
    assert "is not allocated" in out[unalloc.uid].error
    err = out[bad_cfg.uid].error
    assert "GpuConfig.sharing.strategy: must be one of 'TimeSlicing' or 'MPS', got 'Sometimes'" in err
    assert "is not on node node-a" in out[elsewhere.uid].error
    assert "not found" in out[missing.uid].error
    assert set(p.prepared_claims()) == {good.uid}  # failed claims leave nothing behind
    assert len(list((tmp_path / "cdi").iterdir())) == 1


def test_claim_without_devices_of_this_driver_leaves_no_state(tmp_path: Path) -> None:
    claims = Claims()
    ref = claims.add("other", [])
    claims.items[("ns", "other")]["status"]["allocation"]["devices"]["results"] = [
        {"request": "nic", "driver": "dra.net", "pool": NODE, "device": "eth1"}]
    p = make(tmp_path, claims)
    assert p.prepare([ref])[ref.uid].devices == [] and p.prepare([ref])[ref.uid].error == ""
    assert p.prepared_claims() == {} and not list((tmp_path / "cdi").glob("*"))


def test_device_already_prepared_for_another_claim_is_refused(tmp_path: Path) -> None:
    claims = Claims()
    a = claims.add("a", ["gpu-0"])
    b = claims.add("b", ["gpu-0"])
    p = make(tmp_path, claims)
    assert p.prepare([a])[a.uid].error == ""
    assert "already prepared for claim uid-a" in p.prepare([b])[b.uid].error


def test_mig_devices_and_sharing_config_land_in_cdi(tmp_path: Path) -> None:
    claims = Claims()
    ref = claims.add("m", ["gpu-3-mig-3g40gb-9-0"], config=[{"source": "FromClass", "requests": [], "opaque": {
        "driver": DRV, "parameters": {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "MigDeviceConfig",
                                      "sharing": {"strategy": "MPS"}}}}])
    p = make(tmp_path, claims)
    assert p.prepare([ref])[ref.uid].error == ""
    spec = json.loads((tmp_path / "cdi" / f"k8s.gpu.nvidia.com-claim_{ref.uid}.json").read_text())
    env = spec["devices"][0]["containerEdits"]["env"]
    assert "GROVE_DRA_DEVICE_GPU_3_MIG_3G40GB_9_0_SHARING_STRATEGY=MPS" in env
    assert "CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps" in env and len(p.mps.running()) == 1
    assert p.unprepare([ref]) == {ref.uid: ""} and p.mps.running() == {}


def test_interrupted_prepare_is_rolled_back_at_startup(tmp_path: Path) -> None:
    claims = Claims()
    ref = claims.add("c", ["gpu-1"])
    p = make(tmp_path, claims)
    # Simulate a crash after the backend prepared and the CDI spec was written, before PrepareCompleted.
    p.backend.prepare(ref.uid, p.devices["gpu-1"], default_for("gpu"))
    (tmp_path / "cdi").mkdir(exist_ok=True)
    (tmp_path / "cdi" / f"k8s.gpu.nvidia.com-claim_{ref.uid}.json").write_text("{}")
    p.store.save({ref.uid: ClaimRecord(ref.uid, "ns", "c", STARTED, [{"deviceName": "gpu-1"}])})
    p2 = make(tmp_path, claims)
    assert p2.prepared_claims() == {}
    assert json.loads((tmp_path / "data" / STATE_FILE).read_text()) == {}
    assert list((tmp_path / "cdi").iterdir()) == []
    assert p2.prepare([ref])[ref.uid].error == ""


@pytest.mark.parametrize("damage", [b"", b"{", b"\x00" * 64])
def test_corrupt_checkpoint_is_rebuilt_from_cdi(tmp_path: Path, damage: bytes) -> None:
    claims = Claims()
    ref = claims.add("c", ["gpu-2"])
    first = make(tmp_path, claims).prepare([ref])[ref.uid]
    (tmp_path / "data" / "checkpoint.json").write_bytes(damage)
    p = make(tmp_path, claims)
    assert "corrupt checkpoint" in p.recovery
    assert (tmp_path / "data" / "checkpoint.json.corrupt").read_bytes() == damage
    assert p.prepare([ref])[ref.uid].devices == first.devices  # still idempotent
    assert prepare_log(tmp_path) == [f"{ref.uid} gpu-2"]
    assert p.unprepare([ref]) == {ref.uid: ""}
    assert list((tmp_path / "cdi").iterdir()) == []


def test_reboot_invalidates_checkpoint(tmp_path: Path) -> None:
    claims = Claims()
    ref = claims.add("c", ["gpu-0"])
    make(tmp_path, claims, boot="boot-1").prepare([ref])
    p = make(tmp_path, claims, boot="boot-2")
    assert p.prepared_claims() == {} and "another boot" in p.recovery
    assert list((tmp_path / "cdi").iterdir()) == []  # stale specs removed
    assert p.prepare([ref])[ref.uid].error == ""  # the device is free again
