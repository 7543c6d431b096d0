"""Auto-MNNVL: group resolution over PCS / scaling group / clique annotations, GPU detection, ComputeDomains
and the `mnnvl-claim` injection; and the explicit `devices.computeDomain`."""

from __future__ import annotations

from typing import Any

import pytest
from claims_fixtures import clique, container, names, pcs

from grove.api import constants as c
from grove.claims import claim_objects, inject_claims
from grove.claims.mnnvl import container_uses_gpu

MNNVL = c.ANNOTATION_MNNVL_GROUP


def gpu_clique(name: str, **extra: Any) -> dict[str, Any]:
    return clique(name, spec={"podSpec": {"containers": [container("gpu", gpus=4), container("sidecar")]}}, **extra)


def cds(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == "ComputeDomain"]


def test_pcs_annotation_makes_one_domain_per_replica() -> None:
    doc = pcs([gpu_clique("a"), gpu_clique("b"), clique("cpu")], annotations={MNNVL: "nvl"})
    for replica in (0, 1):
        (cd,) = cds(claim_objects(doc, replica))
        name = f"inf-{replica}-nvl"
        assert cd["apiVersion"] == "resource.nvidia.com/v1beta1"
        assert cd["metadata"]["name"] == name
        assert cd["metadata"]["namespace"] == "ns"
        assert cd["spec"] == {"numNodes": 0, "channel": {"resourceClaimTemplate": {"name": name},
                                                         "allocationMode": "Single"}}
        labels = cd["metadata"]["labels"]
        assert labels[c.LABEL_MNNVL_GROUP] == "nvl"
        assert labels[c.LABEL_PCS_REPLICA_INDEX] == str(replica)
        assert labels[c.LABEL_COMPONENT] == "pcs-computedomain"
        assert cd["metadata"]["ownerReferences"][0]["kind"] == "PodCliqueSet"


def test_only_gpu_containers_get_the_claim() -> None:
    doc = pcs([gpu_clique("a")], annotations={MNNVL: "nvl"})
    spec = doc["spec"]["template"]["cliques"][0]["spec"]["podSpec"]
    out = inject_claims(spec, doc, "a", 1, None, None, 0)
    assert out["resourceClaims"] == [{"name": "mnnvl-claim", "resourceClaimTemplateName": "inf-1-nvl"}]
    gpu, sidecar = out["containers"]
    assert gpu["resources"]["claims"] == [{"name": "mnnvl-claim"}]
    assert "claims" not in (sidecar.get("resources") or {})


def test_cpu_clique_inheriting_the_annotation_is_skipped() -> None:
    doc = pcs([clique("cpu")], annotations={MNNVL: "nvl"})
    assert cds(claim_objects(doc, 0)) == []
    spec = doc["spec"]["template"]["cliques"][0]["spec"]["podSpec"]
    assert "resourceClaims" not in inject_claims(spec, doc, "cpu", 0, None, None, 0)


def test_lower_levels_override_and_none_opts_out() -> None:
    doc = pcs(
        [
            gpu_clique("a"),  # inherits the group's "grp"
            gpu_clique("b", annotations={MNNVL: "none"}),  # opts out inside the group
            gpu_clique("c"),  # inherits the PCS's "top"
            gpu_clique("d", annotations={MNNVL: "own"}),
        ],
        annotations={MNNVL: "top"},
        podCliqueScalingGroups=[{"name": "sg", "cliqueNames": ["a", "b"], "annotations": {MNNVL: "grp"}}],
    )
    assert names(claim_objects(doc, 0)) == ["inf-0-grp", "inf-0-own", "inf-0-top"]

    def domain(clq: str, group: str | None) -> str | None:
        tpl = next(t for t in doc["spec"]["template"]["cliques"] if t["name"] == clq)
        out = inject_claims(tpl["spec"]["podSpec"], doc, clq, 0, group, 0 if group else None, 0)
        entries = out.get("resourceClaims") or []
        return entries[0]["resourceClaimTemplateName"] if entries else None

    assert domain("a", "sg") == "inf-0-grp"
    assert domain("b", "sg") is None
    assert domain("c", None) == "inf-0-top"
    assert domain("d", None) == "inf-0-own"


def test_group_none_at_pcs_level_means_no_domain() -> None:
    doc = pcs([gpu_clique("a")], annotations={MNNVL: "none"})
    assert claim_objects(doc, 0) == []


def test_devices_gpu_counts_as_gpu_and_every_container_gets_the_channel() -> None:
    doc = pcs([clique("w", spec={"devices": {"gpu": {"count": 4}},
                                 "podSpec": {"containers": [container("a"), container("b")]}})],
              annotations={MNNVL: "nvl"})
    assert names(claim_objects(doc, 0)) == ["inf-0-w-devices", "inf-0-nvl"]
    out = inject_claims(doc["spec"]["template"]["cliques"][0]["spec"]["podSpec"], doc, "w", 0, None, None, 0)
    assert [e["name"] for e in out["resourceClaims"]] == ["grove-devices", "mnnvl-claim"]
    for ct in out["containers"]:
        assert ct["resources"]["claims"] == [{"name": "grove-devices"}, {"name": "mnnvl-claim"}]


def test_explicit_compute_domain_defaults_to_the_clique_name() -> None:
    doc = pcs([clique("w", spec={"devices": {"gpu": {}, "computeDomain": {}}})])
    assert names(claim_objects(doc, 1)) == ["inf-1-w-devices", "inf-1-w"]
    out = inject_claims({"containers": [container()]}, doc, "w", 1, None, None, 0)
    assert out["resourceClaims"][-1] == {"name": "mnnvl-claim", "resourceClaimTemplateName": "inf-1-w"}


def test_explicit_compute_domain_group_is_shared_between_cliques() -> None:
    cd = {"computeDomain": {"group": "fabric"}}
    doc = pcs([clique("a", spec={"devices": {"gpu": {}, **cd}}), clique("b", spec={"devices": {"gpu": {}, **cd}})])
    assert names(claim_objects(doc, 0), "ComputeDomain") == ["inf-0-fabric"]


def test_existing_compute_domain_is_joined_not_created() -> None:
    doc = pcs([clique("w", spec={"devices": {"computeDomain": {"name": "shared-cd"}}})])
    assert claim_objects(doc, 0) == []
    out = inject_claims({"containers": [container()]}, doc, "w", 0, None, None, 0)
    assert out["resourceClaims"] == [{"name": "mnnvl-claim", "resourceClaimTemplateName": "shared-cd"}]


@pytest.mark.parametrize(
    ("resources", "uses"),
    [
        ({"limits": {"nvidia.com/gpu": "1"}}, True),
        ({"requests": {"nvidia.com/gpu": 2}}, True),
        ({"limits": {"nvidia.com/gpu": "0"}}, False),
        ({"limits": {"cpu": "1"}}, False),
        ({}, False),
    ],
)
def test_container_uses_gpu(resources: dict[str, Any], uses: bool) -> None:
    assert container_uses_gpu({"name": "x", "resources": resources}) is uses
