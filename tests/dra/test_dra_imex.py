"""IMEX channel and daemon devices of compute-domain.nvidia.com (grove.dra.imex), through the prepare state
machine: a real channel file under the driver's root on simulated nodes, the CDI edit, NVIDIA's config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_dra_prepare import NODE, Claims

from grove.dra.backends.base import BackendError
from grove.dra.cdi import CdiWriter
from grove.dra.checkpoint import CheckpointStore
from grove.dra.imex import ImexBackend, imex_major
from grove.dra.opaqueconfig import DeviceConfig
from grove.dra.prepare import Preparer

CD = "compute-domain.nvidia.com"


def channel_config(**extra: Any) -> list[dict[str, Any]]:
    return [{"source": "FromClaim", "requests": [], "opaque": {"driver": CD, "parameters": {
        "apiVersion": "resource.nvidia.com/v1beta1", "kind": "ComputeDomainChannelConfig", "domainID": "d-1",
        **extra}}}]


class CdClaims(Claims):
    def add(self, name: str, devices: list[str], config: list[dict[str, Any]] | None = None,
            uid: str | None = None, allocated: bool = True) -> Any:
        ref = super().add(name, devices, config, uid, allocated)
        for r in self.items[("ns", name)]["status"]["allocation"]["devices"]["results"]:
            r["driver"] = CD
        return ref


def make(tmp_path: Path, claims: Claims) -> Preparer:
    backend = ImexBackend(tmp_path / "root", tmp_path / "data", simulated=True)
    p = Preparer(CD, NODE, backend, claims, CdiWriter(tmp_path / "cdi", CD),
                 CheckpointStore(tmp_path / "data" / "checkpoint.json", boot_id="b"), tmp_path / "data",
                 backend.discover())
    p.startup()
    return p


def test_channel_claim_gets_a_real_channel_file_and_the_cdi_device_node(tmp_path: Path) -> None:
    claims = CdClaims()
    p = make(tmp_path, claims)
    ref = claims.add("ch", ["channel-0"], channel_config())
    out = p.prepare([ref])[ref.uid]
    assert out.error == "" and out.devices[0]["cdiDeviceIds"] == [f"k8s.{CD}/claim={ref.uid}-channel-0"]
    spec = json.loads(p.cdi.path(ref.uid).read_text())
    [dev] = spec["devices"]
    host = tmp_path / "root/dev/nvidia-caps-imex-channels/channel0"
    assert dev["containerEdits"] == {"deviceNodes": [
        {"path": "/dev/nvidia-caps-imex-channels/channel0", "hostPath": str(host)}]}
    assert host.is_file()
    assert p.unprepare([ref]) == {ref.uid: ""} and not p.cdi.path(ref.uid).exists()


def test_channel_needs_its_config_and_all_mode_injects_every_channel(tmp_path: Path) -> None:
    claims = CdClaims()
    p = make(tmp_path, claims)
    bare = claims.add("bare", ["channel-0"])
    assert "needs a ComputeDomainChannelConfig with a domainID" in p.prepare([bare])[bare.uid].error
    typo = claims.add("typo", ["channel-0"], channel_config(domainId="x"))
    assert "ComputeDomainChannelConfig.domainId: unknown field" in p.prepare([typo])[typo.uid].error
    every = claims.add("all", ["channel-0"], channel_config(allocationMode="All"))
    assert p.prepare([every])[every.uid].error == ""
    [dev] = json.loads(p.cdi.path(every.uid).read_text())["devices"]
    nodes = dev["containerEdits"]["deviceNodes"]
    assert len(nodes) == 2048 and nodes[-1]["path"] == "/dev/nvidia-caps-imex-channels/channel2047"


def test_daemon_claim_and_real_node_major(tmp_path: Path) -> None:
    b = ImexBackend(tmp_path / "root", tmp_path / "data", simulated=True)
    edits = b.prepare("u", b.discover()[1], DeviceConfig("ComputeDomainDaemonConfig", domain_id="d-9"))
    assert edits.env == ["COMPUTE_DOMAIN_UUID=d-9"] and edits.mounts[0]["containerPath"] == "/imexd"
    assert (tmp_path / "data/domains/d-9").is_dir()
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/devices").write_text("Character devices:\n195 nvidia\n234 nvidia-caps-imex-channels\n")
    assert imex_major(tmp_path / "proc") == 234
    (tmp_path / "proc/devices").write_text("Character devices:\n195 nvidia\n")
    real = ImexBackend(tmp_path / "host", tmp_path / "data", simulated=False, proc_root=tmp_path / "proc")
    with pytest.raises(BackendError, match="driver without IMEX support"):
        real.prepare("u", real.discover()[0], DeviceConfig("ComputeDomainChannelConfig", domain_id="d"))
