"""ResourceSlice building (128-device split) and publication against an in-memory API server."""

from __future__ import annotations

from typing import Any

from dra_fakeapi import FakeApi
from kubernetes import config

from grove.dra import healthtaints as ht
from grove.dra.backends.base import DeviceHealth
from grove.dra.slices import MAX_DEVICES, SlicePublisher, build_specs, chunk_devices, with_health_taints


def devs(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": f"gpu-{i}", "attributes": {"type": {"string": "gpu"}}, **extra} for i in range(n)]


def test_split_at_128() -> None:
    assert [len(c) for c in chunk_devices(devs(300))] == [128, 128, 44]
    assert [len(c) for c in chunk_devices(devs(128))] == [128]
    assert [len(c) for c in chunk_devices(devs(129))] == [128, 1]
    assert chunk_devices([]) == [[]]
    assert [len(c) for c in chunk_devices(devs(100, taints=[{"key": "k", "effect": "NoSchedule"}]))] == [64, 36]


def test_unhealthy_devices_get_nvidias_taints_and_smaller_slices() -> None:
    health = {"gpu-7": DeviceHealth.of([ht.xid(79)]), "gpu-8": DeviceHealth(True),
              "gpu-9": DeviceHealth.of([ht.gpu_lost()]), "gpu-10": DeviceHealth.of([ht.unmonitored()]),
              "gpu-11": DeviceHealth.of([ht.xid(31)])}
    tainted = with_health_taints(devs(100), health, "gpu.nvidia.com")
    assert {d["name"]: d["taints"] for d in tainted if d.get("taints")} == {
        "gpu-7": [{"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule"}],
        "gpu-9": [{"key": "gpu.nvidia.com/gpu-lost", "effect": "NoSchedule"}],
        "gpu-10": [{"key": "gpu.nvidia.com/unmonitored", "effect": "None"}],
        "gpu-11": [{"key": "gpu.nvidia.com/xid", "value": "31", "effect": "None"}],  # non-fatal: informational
    }
    assert "taints" not in devs(100)[7]  # input not mutated
    assert [len(c) for c in chunk_devices(tainted)] == [64, 36]


def test_specs_share_pool_generation_and_count() -> None:
    specs = build_specs("gpu.nvidia.com", "n1", devs(300), 7)
    assert {s["pool"]["generation"] for s in specs} == {7}
    assert {s["pool"]["resourceSliceCount"] for s in specs} == {3}
    assert all(s["pool"]["name"] == "n1" and s["nodeName"] == "n1" for s in specs)
    names = [d["name"] for s in specs for d in s["devices"]]
    assert names == [f"gpu-{i}" for i in range(300)] and all(len(s["devices"]) <= MAX_DEVICES for s in specs)


def test_publish_diff_generation_and_cleanup(fake_api: FakeApi, tmp_path: Any) -> None:
    fake_api.add_node("n1")
    api = config.new_client_from_config(config_file=str(fake_api.kubeconfig(tmp_path / "kc")))
    pub = SlicePublisher(api, "gpu.nvidia.com", "n1")
    assert pub.publish(devs(200)) == 1
    slices = fake_api.slices_for("n1")
    assert len(slices) == 2
    owner = slices[0]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Node" and owner["uid"] == fake_api.nodes["n1"]["metadata"]["uid"]
    writes = len(fake_api.writes)
    assert pub.publish(devs(200)) == 1 and len(fake_api.writes) == writes  # unchanged: no writes
    assert pub.publish(devs(3)) == 2  # change: generation bump, surplus slice deleted
    slices = fake_api.slices_for("n1")
    assert len(slices) == 1 and slices[0]["spec"]["pool"] == {"name": "n1", "generation": 2, "resourceSliceCount": 1}
    fake_api.add_node("n2")
    SlicePublisher(api, "gpu.nvidia.com", "n2").publish(devs(1))
    assert pub.delete_all() == 1
    assert fake_api.slices_for("n1") == [] and len(fake_api.slices_for("n2")) == 1  # only ours
