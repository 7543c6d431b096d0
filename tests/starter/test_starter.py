"""`grove init` (issue #10): every layout, with and without GPUs, MIG and ComputeDomains, renders a PodCliqueSet
that `grove validate` accepts and that has the shape the layout promises; bad flags fail naming the flag."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from grove.expansion import graph
from grove.starter.render import LAYOUTS, Starter, StarterError, render

DEVICES = [
    {},
    {"gpus": 2},
    {"gpus": 4, "compute_domain": True},
    {"mig": "1g.10gb"},
]


def cliques(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c["spec"] for c in obj["spec"]["template"]["cliques"]}


@pytest.mark.parametrize(("layout", "devices"), list(itertools.product(LAYOUTS, DEVICES)))
def test_every_layout_validates_with_the_cli(layout: str, devices: dict[str, Any], tmp_path: Path) -> None:
    text = render(Starter(layout=layout, name="demo", replicas=2, **devices))
    path = tmp_path / "pcs.yaml"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "grove.cli", "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    obj = yaml.safe_load(text)
    assert obj["metadata"]["name"] == "demo" and obj["spec"]["replicas"] == 2
    accelerated = [s for n, s in cliques(obj).items() if n != "frontend"]
    for spec in accelerated:
        got = spec.get("devices", {})
        assert got.get("gpu", {}).get("count") == devices.get("gpus")
        assert got.get("mig", {}).get("profile") == devices.get("mig")
        assert ("computeDomain" in got) == bool(devices.get("compute_domain"))
    assert "devices" not in cliques(obj).get("frontend", {})


def test_multinode_has_leader_worker_scaling_groups() -> None:
    obj = yaml.safe_load(render(Starter(layout="disagg-multinode", name="mn", workers=3, units=2)))
    groups = {g["name"]: g for g in obj["spec"]["template"]["podCliqueScalingGroups"]}
    assert groups["prefill"]["cliqueNames"] == ["pleader", "pworker"]
    assert groups["decode"]["cliqueNames"] == ["dleader", "dworker"]
    assert groups["decode"]["replicas"] == 2
    assert cliques(obj)["pworker"]["replicas"] == 3 and cliques(obj)["pleader"]["replicas"] == 1
    # The operator's expansion agrees: 2 units x (1 leader + 3 workers) per stage, plus the frontend.
    obj["metadata"]["namespace"] = "ns"
    assert len(graph.expand(obj).pods) == 1 + 2 * 2 * (1 + 3)


def test_sandbox_flag_tolerates_kwok_nodes() -> None:
    plain = yaml.safe_load(render(Starter(layout="agg")))
    sandbox = yaml.safe_load(render(Starter(layout="agg", sandbox=True)))
    assert "tolerations" not in cliques(plain)["server"]["podSpec"]
    assert cliques(sandbox)["server"]["podSpec"]["tolerations"][0]["key"] == "kwok.x-k8s.io/node"


@pytest.mark.parametrize(
    ("starter", "flag"),
    [
        (Starter(layout="agg", gpus=1, mig="1g.10gb"), "--mig"),
        (Starter(layout="agg", compute_domain=True), "--compute-domain"),
        (Starter(layout="agg", replicas=0), "--replicas"),
        (Starter(layout="agg", name="Not_A_Name"), "metadata.name"),
        (Starter(layout="agg", image='x: "y'), "not valid YAML"),
        (Starter(layout="ring"), "--layout"),
    ],
)
def test_bad_flags_name_the_flag(starter: Starter, flag: str) -> None:
    with pytest.raises(StarterError, match=flag):
        render(starter)


def test_cli_writes_a_file_and_fails_clearly(tmp_path: Path) -> None:
    out = tmp_path / "s.yaml"
    ok = subprocess.run(
        [sys.executable, "-m", "grove.cli", "init", "--layout", "disagg-single", "--name", "s", "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert yaml.safe_load(out.read_text())["metadata"]["name"] == "s"
    bad = subprocess.run(
        [sys.executable, "-m", "grove.cli", "init", "--layout", "agg", "--gpus", "1", "--mig", "1g.10gb"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "--mig" in bad.stderr and not bad.stdout
