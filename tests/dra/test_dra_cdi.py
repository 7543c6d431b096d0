"""CDI spec files: naming, content, atomic replacement, recovery metadata."""

from __future__ import annotations

import json
from pathlib import Path

from grove.dra.backends.base import ContainerEdits
from grove.dra.cdi import CdiWriter, ClaimSpec, device_id


def test_spec_layout_matches_nvidia_conventions(tmp_path: Path) -> None:
    w = CdiWriter(tmp_path, "gpu.nvidia.com")
    devices = [{"deviceName": "gpu-0", "poolName": "n", "requestNames": ["r"],
                "cdiDeviceIds": [device_id("gpu.nvidia.com", "uid-1", "gpu-0")]}]
    path = w.write(ClaimSpec("uid-1", "ns", "c", devices),
                   {"gpu-0": ContainerEdits(env=["A=1"], device_nodes=["/dev/nvidia0"])},
                   ContainerEdits(device_nodes=["/dev/nvidiactl"]))
    assert path.name == "k8s.gpu.nvidia.com-claim_uid-1.json"
    spec = json.loads(path.read_text())
    assert spec["kind"] == "k8s.gpu.nvidia.com/claim"
    assert spec["cdiVersion"] == "0.6.0"
    assert spec["devices"] == [{"name": "uid-1-gpu-0", "containerEdits": {
        "env": ["A=1"], "deviceNodes": [{"path": "/dev/nvidia0"}]}}]
    assert spec["containerEdits"] == {"deviceNodes": [{"path": "/dev/nvidiactl"}]}
    assert device_id("gpu.nvidia.com", "uid-1", "gpu-0") == "k8s.gpu.nvidia.com/claim=uid-1-gpu-0"
    # CDI ID = kind + "=" + a device name defined in the spec
    kind, name = devices[0]["cdiDeviceIds"][0].split("=")
    assert kind == spec["kind"] and name in {d["name"] for d in spec["devices"]}
    [back] = w.list_claims()
    assert (back.uid, back.namespace, back.name, back.devices) == ("uid-1", "ns", "c", devices)
    assert w.claim_uids_on_disk() == {"uid-1"}
    w.remove("uid-1")
    w.remove("uid-1")  # idempotent
    assert list(tmp_path.iterdir()) == []


def test_unreadable_specs_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "k8s.gpu.nvidia.com-claim_x.json").write_text("{not json")
    (tmp_path / "other-vendor.json").write_text("{}")
    assert CdiWriter(tmp_path, "gpu.nvidia.com").list_claims() == []
