"""Which PodCliqueSets are kept off gang scheduling because pods of one PodClique would share a claim
(kube-scheduler v1.37.2 cannot place such a gang; docs/gang-scheduling.md)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from grove.api import PodCliqueSet
from grove.claims.sharing import pods_of_a_clique_share_a_claim

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


def test_grove_resource_sharing_example_shares_claims_within_cliques() -> None:
    # PCSG PerReplica `shared-gpu` reaches both workers of scaling-group replica 0.
    assert pods_of_a_clique_share_a_claim(PodCliqueSet.model_validate(_example("resource-sharing.yaml")))


@pytest.mark.parametrize("example", ["multi-node-disaggregated.yaml", "gpu-mig-computedomain.yaml"])
def test_per_pod_claims_share_nothing(example: str) -> None:
    assert not pods_of_a_clique_share_a_claim(PodCliqueSet.model_validate(_example(example)))


def test_clique_per_replica_entry_is_one_claim_per_pod() -> None:
    """Clique-level PerReplica means one claim per pod index (`<pclq>-<podIndex>-<tpl>`): nothing shared."""
    doc = _example("resource-sharing.yaml")
    template = doc["spec"]["template"]
    template["resourceSharing"] = []
    for group in template.get("podCliqueScalingGroups") or []:
        group.pop("resourceSharing", None)
    assert any(cl.get("resourceSharing") for cl in template["cliques"])
    assert not pods_of_a_clique_share_a_claim(PodCliqueSet.model_validate(doc))
    shared = copy.deepcopy(doc)
    for cl in shared["spec"]["template"]["cliques"]:
        for entry in cl.get("resourceSharing") or []:
            entry["scope"] = "AllReplicas"
    assert pods_of_a_clique_share_a_claim(PodCliqueSet.model_validate(shared))
