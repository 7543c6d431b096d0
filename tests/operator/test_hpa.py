"""HPAs for `autoScalingConfig` (standalone cliques) and `scaleConfig` (scaling groups), grove-api.md §2.11."""

from __future__ import annotations

from pathlib import Path

import yaml

from grove.api import constants as c
from grove.expansion import graph

ROOT = Path(__file__).resolve().parents[2]


def test_autoscaling_example_renders_one_hpa_per_config_and_replica() -> None:
    pcs = yaml.safe_load((ROOT / "examples/autoscaling.yaml").read_text())
    pcs["spec"]["replicas"] = 2
    hpas = {h["metadata"]["name"]: h for h in graph.expand(pcs).hpas}
    assert set(hpas) == {"autoscale-0-frontend", "autoscale-0-model", "autoscale-1-frontend", "autoscale-1-model"}
    frontend = hpas["autoscale-1-frontend"]
    assert frontend["apiVersion"] == "autoscaling/v2"
    assert frontend["spec"]["scaleTargetRef"] == {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodClique",
        "name": "autoscale-1-frontend",
    }
    assert (frontend["spec"]["minReplicas"], frontend["spec"]["maxReplicas"]) == (1, 5)
    assert frontend["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    labels = frontend["metadata"]["labels"]
    assert labels[c.LABEL_COMPONENT] == c.COMPONENT_HPA
    assert labels[c.LABEL_PART_OF] == "autoscale"
    assert labels[c.LABEL_MANAGED_BY] == c.LABEL_MANAGED_BY_VALUE
    assert labels[c.LABEL_PCS_REPLICA_INDEX] == "1"
    (owner,) = frontend["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("PodCliqueSet", "autoscale", True)
    model = hpas["autoscale-0-model"]
    assert model["spec"]["scaleTargetRef"]["kind"] == "PodCliqueScalingGroup"
    assert model["spec"]["scaleTargetRef"]["name"] == "autoscale-0-model"
    # scaleConfig.minReplicas defaults to the group's replicas.
    assert (model["spec"]["minReplicas"], model["spec"]["maxReplicas"]) == (1, 4)


def test_no_config_no_hpa() -> None:
    pcs = yaml.safe_load((ROOT / "examples/single-node-disaggregated.yaml").read_text())
    assert graph.expand(pcs).hpas == []
