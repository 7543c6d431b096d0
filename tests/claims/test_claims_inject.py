"""inject_claims: which claims a pod references, in which containers, and that it agrees with claim_objects."""

from __future__ import annotations

import copy
from typing import Any

from claims_fixtures import GPU_TEMPLATE, clique, container, hierarchy, pcs

from grove.claims import claim_objects, inject_claims, set_level_objects


def pod_spec(*containers: dict[str, Any], init: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"containers": list(containers) or [container()]}
    if init is not None:
        out["initContainers"] = init
    return out


def claim_names(spec: dict[str, Any]) -> list[str]:
    return [entry["name"] for entry in spec.get("resourceClaims") or []]


def container_claims(ct: dict[str, Any]) -> list[str]:
    return [entry["name"] for entry in (ct.get("resources") or {}).get("claims") or []]


def test_pod_in_group_gets_pcs_group_and_clique_claims_in_grove_order() -> None:
    out = inject_claims(pod_spec(), hierarchy(), "work", 1, "sg", 1, 2)
    assert claim_names(out) == [
        "inf-1-shared-gpu",  # PCS PerReplica (the PCS AllReplicas entry is filtered to "fe")
        "inf-1-sg-all-shared-gpu",
        "inf-1-sg-1-shared-gpu",  # PCSG PerReplica, filter names "work"
        "inf-1-sg-1-work-all-shared-gpu",
        "inf-1-sg-1-work-2-shared-gpu",  # clique PerReplica = per pod index
    ]
    assert all(entry["resourceClaimName"] == entry["name"] for entry in out["resourceClaims"])
    assert container_claims(out["containers"][0]) == claim_names(out)


def test_filters_exclude_other_children() -> None:
    lead = inject_claims(pod_spec(), hierarchy(), "lead", 0, "sg", 0, 0)
    assert claim_names(lead) == ["inf-0-shared-gpu", "inf-0-sg-all-shared-gpu"]
    fe = inject_claims(pod_spec(), hierarchy(), "fe", 0, None, None, 1)
    assert claim_names(fe) == ["inf-all-shared-gpu", "inf-0-shared-gpu"]


def test_filter_by_scaling_group_name() -> None:
    doc = pcs([clique("a"), clique("b")], resourceClaimTemplates=[GPU_TEMPLATE],
              podCliqueScalingGroups=[{"name": "sg", "cliqueNames": ["a"]}],
              resourceSharing=[{"name": "shared-gpu", "scope": "AllReplicas",
                                "filter": {"childScalingGroupNames": ["sg"]}}])
    assert claim_names(inject_claims(pod_spec(), doc, "a", 0, "sg", 0, 0)) == ["inf-all-shared-gpu"]
    assert claim_names(inject_claims(pod_spec(), doc, "b", 0, None, None, 0)) == []


def test_every_referenced_claim_is_created() -> None:
    """The pods' references and the objects come from the same enumeration; check it across the hierarchy."""
    doc = hierarchy()
    created = {o["metadata"]["name"] for r in range(2) for o in claim_objects(doc, r)}
    created |= {o["metadata"]["name"] for o in set_level_objects(doc)}
    cases = [("fe", None, None, 2), ("lead", "sg", 2, 1), ("work", "sg", 2, 3)]
    for replica in range(2):
        for clq, group, group_replicas, pods in cases:
            for j in range(group_replicas or 1):
                for k in range(pods):
                    out = inject_claims(pod_spec(), doc, clq, replica, group, j if group else None, k)
                    assert set(claim_names(out)) <= created, (clq, replica, j, k)


def test_all_containers_and_init_containers_but_not_operator_ones() -> None:
    spec = pod_spec(container("a"), container("b"),
                    init=[container("setup"), container("grove-startup-wait")])
    out = inject_claims(spec, hierarchy(), "fe", 0, None, None, 0)
    for ct in out["containers"] + out["initContainers"][:1]:
        assert container_claims(ct) == ["inf-all-shared-gpu", "inf-0-shared-gpu"]
    assert container_claims(out["initContainers"][1]) == []


def test_input_is_not_modified_and_injection_is_idempotent() -> None:
    spec = pod_spec(container("a"))
    before = copy.deepcopy(spec)
    once = inject_claims(spec, hierarchy(), "fe", 0, None, None, 0)
    assert spec == before
    assert inject_claims(once, hierarchy(), "fe", 0, None, None, 0) == once


def test_user_claims_are_kept() -> None:
    spec = {"containers": [{"name": "a", "resources": {"claims": [{"name": "mine"}]}}],
            "resourceClaims": [{"name": "mine", "resourceClaimTemplateName": "t"}]}
    out = inject_claims(spec, hierarchy(), "fe", 0, None, None, 0)
    assert claim_names(out)[0] == "mine"
    assert container_claims(out["containers"][0])[0] == "mine"


def test_devices_per_pod_template_reference() -> None:
    doc = pcs([clique("w", spec={"devices": {"gpu": {"count": 8}}})])
    out = inject_claims(pod_spec(container("a"), container("b")), doc, "w", 1, None, None, 0)
    assert out["resourceClaims"] == [{"name": "grove-devices", "resourceClaimTemplateName": "inf-1-w-devices"}]
    assert [container_claims(ct) for ct in out["containers"]] == [["grove-devices"], ["grove-devices"]]
    assert claim_objects(doc, 1)[0]["metadata"]["name"] == "inf-1-w-devices"


def test_devices_shared_claim_reference() -> None:
    doc = pcs([clique("w", spec={"devices": {"mig": {"profile": "1g.10gb"}, "sharing": "PerReplica"}})])
    out = inject_claims(pod_spec(), doc, "w", 1, None, None, 3)
    assert out["resourceClaims"] == [{"name": "grove-devices", "resourceClaimName": "inf-1-w-devices"}]
    doc = pcs([clique("w", spec={"devices": {"gpu": {}, "sharing": "AllReplicas"}})])
    out = inject_claims(pod_spec(), doc, "w", 1, None, None, 3)
    assert out["resourceClaims"] == [{"name": "grove-devices", "resourceClaimName": "inf-all-w-devices"}]


def test_long_claim_names_get_a_dns_label_pod_name() -> None:
    long_tpl = {**GPU_TEMPLATE, "name": "a-very-long-template-name-for-the-shared-accelerators"}
    doc = pcs([clique("c")], name="a-long-podcliqueset-name", resourceClaimTemplates=[long_tpl],
              resourceSharing=[{"name": long_tpl["name"], "scope": "PerReplica"}])
    (entry,) = inject_claims(pod_spec(), doc, "c", 0, None, None, 0)["resourceClaims"]
    assert entry["resourceClaimName"] == f"a-long-podcliqueset-name-0-{long_tpl['name']}"
    assert len(entry["name"]) <= 63 and entry["name"] != entry["resourceClaimName"]
    assert entry["name"] == inject_claims(pod_spec(), doc, "c", 0, None, None, 0)["resourceClaims"][0]["name"]


def test_unknown_clique_is_an_error() -> None:
    try:
        inject_claims(pod_spec(), hierarchy(), "nope", 0, None, None, 0)
    except KeyError:
        return
    raise AssertionError("expected KeyError")
