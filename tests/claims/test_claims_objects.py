"""claim_objects / set_level_objects: Grove's resourceSharing names, scopes, filters, labels and owners, plus
the objects of the `devices` short spec."""

from __future__ import annotations

import copy

from claims_fixtures import GPU_TEMPLATE, clique, hierarchy, names, pcs

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.claims import claim_objects, external_template_refs, is_stale, set_level_objects


def test_grove_names_for_every_level_and_scope() -> None:
    objs = claim_objects(hierarchy(), 0)
    assert names(objs) == [
        "inf-all-shared-gpu",  # PCS AllReplicas (set level, carried by replica 0)
        "inf-0-shared-gpu",  # PCS PerReplica
        "inf-0-sg-all-shared-gpu",  # PCSG AllReplicas
        "inf-0-sg-0-shared-gpu",  # PCSG PerReplica, group replica 0 and 1
        "inf-0-sg-1-shared-gpu",
        # clique level inside the group: per PodClique (group replica j) AllReplicas, then per pod index
        "inf-0-sg-0-work-all-shared-gpu",
        "inf-0-sg-0-work-0-shared-gpu",
        "inf-0-sg-0-work-1-shared-gpu",
        "inf-0-sg-0-work-2-shared-gpu",
        "inf-0-sg-1-work-all-shared-gpu",
        "inf-0-sg-1-work-0-shared-gpu",
        "inf-0-sg-1-work-1-shared-gpu",
        "inf-0-sg-1-work-2-shared-gpu",
    ]
    assert all(o["kind"] == "ResourceClaim" and o["apiVersion"] == "resource.k8s.io/v1" for o in objs)


def test_set_level_objects_only_with_replica_zero() -> None:
    replica1 = names(claim_objects(hierarchy(), 1))
    assert "inf-all-shared-gpu" not in replica1
    assert replica1[0] == "inf-1-shared-gpu"
    assert names(set_level_objects(hierarchy())) == ["inf-all-shared-gpu"]


def test_claim_spec_labels_and_owner() -> None:
    objs = {o["metadata"]["name"]: o for o in claim_objects(hierarchy(), 0)}
    claim = objs["inf-0-sg-1-work-2-shared-gpu"]
    assert claim["spec"] == GPU_TEMPLATE["templateSpec"]["spec"]
    meta = claim["metadata"]
    assert meta["namespace"] == "ns"
    assert meta["labels"] == {
        "team": "a",  # from the template's metadata, like a template-generated claim
        c.LABEL_MANAGED_BY: "grove-operator",
        c.LABEL_PART_OF: "inf",
        c.LABEL_NAME: "inf-0-sg-1-work-2-shared-gpu",
        c.LABEL_COMPONENT: "resource-claim",
        c.LABEL_PCS_REPLICA_INDEX: "0",
        c.LABEL_PCSG: "inf-0-sg",
        c.LABEL_PCSG_REPLICA_INDEX: "1",
        c.LABEL_PODCLIQUE: "inf-0-sg-1-work",
        c.LABEL_POD_INDEX: "2",
    }
    assert meta["ownerReferences"] == [
        {"apiVersion": "grove.io/v1alpha1", "kind": "PodCliqueSet", "name": "inf", "uid": "pcs-uid",
         "controller": True, "blockOwnerDeletion": True}
    ]
    assert c.LABEL_PCS_REPLICA_INDEX not in objs["inf-all-shared-gpu"]["metadata"]["labels"]


def test_live_replica_counts_override_the_template() -> None:
    objs = names(claim_objects(hierarchy(), 0, group_replicas={"sg": 1}, clique_replicas={"work": 1}))
    assert "inf-0-sg-1-shared-gpu" not in objs
    assert "inf-0-sg-0-work-0-shared-gpu" in objs
    assert "inf-0-sg-0-work-1-shared-gpu" not in objs


def test_standalone_clique_level_sharing() -> None:
    doc = pcs([clique("solo", 2, resourceSharing=[{"name": "shared-gpu", "scope": "PerReplica"}])],
              resourceClaimTemplates=[GPU_TEMPLATE])
    assert names(claim_objects(doc, 1)) == ["inf-1-solo-0-shared-gpu", "inf-1-solo-1-shared-gpu"]


def test_external_templates_are_fetched_by_the_caller() -> None:
    doc = pcs([clique("a")], resourceSharing=[{"name": "ext", "namespace": "other", "scope": "PerReplica"},
                                             {"name": "local-ext", "scope": "AllReplicas"}])
    assert external_template_refs(doc) == [("ns", "local-ext"), ("other", "ext")]
    assert claim_objects(doc, 0) == []  # not handed in yet: nothing to create from
    ext = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
           "metadata": {"name": "ext", "namespace": "other"},
           "spec": {"spec": {"devices": {"requests": [{"name": "x", "exactly": {"deviceClassName": "d"}}]}}}}
    objs = claim_objects(doc, 0, external_templates={("other", "ext"): ext})
    assert names(objs) == ["inf-0-ext"]
    assert objs[0]["metadata"]["namespace"] == "ns"  # the claim lives with the pods
    assert objs[0]["spec"] == ext["spec"]["spec"]


def test_internal_template_wins_over_external_namesake() -> None:
    doc = pcs([clique("a")], resourceClaimTemplates=[GPU_TEMPLATE],
              resourceSharing=[{"name": "shared-gpu", "scope": "PerReplica"}])
    assert external_template_refs(doc) == []
    assert claim_objects(doc, 0)[0]["spec"] == GPU_TEMPLATE["templateSpec"]["spec"]


def test_devices_per_pod_is_a_template_per_replica() -> None:
    doc = pcs([clique("w", 2, spec={"devices": {"gpu": {"count": 2, "productName": "NVIDIA H100 80GB HBM3"}}})])
    (rct,) = claim_objects(doc, 1)
    assert rct["kind"] == "ResourceClaimTemplate"
    assert rct["metadata"]["name"] == "inf-1-w-devices"
    assert rct["metadata"]["labels"][c.LABEL_COMPONENT] == "resource-claim-template"
    assert rct["metadata"]["labels"][c.LABEL_PCS_REPLICA_INDEX] == "1"
    assert rct["spec"]["metadata"] == {"labels": {c.LABEL_PART_OF: "inf"}}
    request = rct["spec"]["spec"]["devices"]["requests"][0]
    assert request["exactly"]["count"] == 2 and request["exactly"]["deviceClassName"] == "gpu.nvidia.com"


def test_devices_shared_scopes_are_claims() -> None:
    per_replica = pcs([clique("w", spec={"devices": {"mig": {"profile": "1g.10gb"}, "sharing": "PerReplica"}})])
    assert [(o["kind"], o["metadata"]["name"]) for o in claim_objects(per_replica, 1)] == [
        ("ResourceClaim", "inf-1-w-devices")]
    everyone = pcs([clique("w", spec={"devices": {"gpu": {}, "sharing": "AllReplicas"}})])
    assert names(claim_objects(everyone, 0)) == ["inf-all-w-devices"]
    assert claim_objects(everyone, 1) == []
    assert names(set_level_objects(everyone)) == ["inf-all-w-devices"]


def test_accepts_the_pydantic_model() -> None:
    model = PodCliqueSet.model_validate(hierarchy())
    assert claim_objects(model, 0) == claim_objects(hierarchy(), 0)


def test_no_sharing_no_objects() -> None:
    assert claim_objects(pcs([clique("a", 3)]), 0) == []


def test_stale_objects_after_scale_in() -> None:
    doc = hierarchy()
    objs = {o["metadata"]["name"]: o for r in range(2) for o in claim_objects(doc, r)}
    assert not any(is_stale(doc, o) for o in objs.values())  # nothing is stale at the template's counts
    smaller = copy.deepcopy(doc)
    smaller["spec"]["replicas"] = 1
    stale = {n for n, o in objs.items() if is_stale(smaller, o, group_replicas={"sg": 1}, clique_replicas={"work": 2})}
    assert "inf-all-shared-gpu" not in stale  # set level
    assert {n for n in stale if n.startswith("inf-1-")} == {n for n in objs if n.startswith("inf-1-")}
    assert {n for n in stale if n.startswith("inf-0-")} == {
        "inf-0-sg-1-shared-gpu",  # PCSG replica 1 is gone
        "inf-0-sg-1-work-all-shared-gpu", "inf-0-sg-1-work-0-shared-gpu", "inf-0-sg-1-work-1-shared-gpu",
        "inf-0-sg-1-work-2-shared-gpu",
        "inf-0-sg-0-work-2-shared-gpu",  # pod index 2 of a clique scaled to 2
    }


def test_stale_ignores_foreign_objects_and_tracks_compute_domain_groups() -> None:
    doc = pcs([clique("w", spec={"devices": {"gpu": {}, "computeDomain": {}}})])
    cd = next(o for o in claim_objects(doc, 0) if o["kind"] == "ComputeDomain")
    assert not is_stale(doc, cd)
    renamed = copy.deepcopy(doc)
    renamed["spec"]["template"]["cliques"][0]["spec"]["devices"]["computeDomain"] = {"group": "other"}
    assert is_stale(renamed, cd)
    foreign = {"metadata": {"labels": {c.LABEL_PART_OF: "inf", c.LABEL_COMPONENT: "pcs-podclique",
                                       c.LABEL_PCS_REPLICA_INDEX: "9"}}}
    assert not is_stale(doc, foreign)
    other_pcs = copy.deepcopy(cd)
    other_pcs["metadata"]["labels"][c.LABEL_PART_OF] = "someone-else"
    assert not is_stale(renamed, other_pcs)
