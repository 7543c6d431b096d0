"""The PCS reconcile's claim objects against in-memory caches: live counts after `/scale` (no generation
change), stale claim objects after scale-in, external resourceSharing templates from the template index."""

from __future__ import annotations

import copy
from typing import Any

from operator_fixtures import FakeKube, cache_of, clique, dispatch, make_pcs

from controllers import cache as caches
from controllers.runtime import Options, Runtime
from grove.expansion import claims as seam
from grove.expansion import graph


def runtime(objects: list[dict[str, Any]]) -> tuple[Runtime, FakeKube]:
    kube = FakeKube()
    rt = Runtime(kube=kube, options=Options())  # type: ignore[arg-type]
    rt.cache = cache_of(objects)
    return rt, kube


def sharing_pcs(replicas: int = 1, external: bool = False) -> dict[str, Any]:
    """PCSG `sg` [w x2] x2 with a PerReplica claim per group replica (`<pcs>-<i>-sg-<j>-gpu`)."""
    group = {
        "name": "sg",
        "cliqueNames": ["w"],
        "replicas": 2,
        "resourceSharing": [{"name": "gpu", "scope": "PerReplica"}],
    }
    pcs = make_pcs("sh", replicas, [clique("a", 1), clique("w", 2)], [group])
    spec = {"spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}}}
    pcs["spec"]["template"]["resourceClaimTemplates"] = [{"name": "gpu", "templateSpec": spec}]
    if external:
        pcs["spec"]["template"]["resourceSharing"] = [{"name": "ext", "scope": "PerReplica"}]
    pcs["metadata"]["uid"] = "uid-sh"
    return pcs


def children(pcs: dict[str, Any], group_replicas: int | None = None) -> list[dict[str, Any]]:
    """The PCS's PodCliques and scaling groups (optionally with the PCSG `/scale`d), with uids."""
    g = graph.expand(pcs)
    out = copy.deepcopy([*g.podcliques, *g.scaling_groups])
    for o in out:
        o["metadata"]["uid"] = f"uid-{o['metadata']['name']}"
        if group_replicas is not None and o["kind"] == "PodCliqueScalingGroup":
            o["spec"]["replicas"] = group_replicas
    return out


def claims_of(pcs: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    model = Runtime(kube=None, options=Options()).load(pcs).model  # type: ignore[arg-type]
    assert model is not None
    out = []
    for i in range(pcs["spec"]["replicas"]):
        for o in seam.replica_claims(model, i, **kwargs):
            o["metadata"]["uid"] = f"uid-{o['metadata']['name']}"
            out.append(o)
    return out


def reconcile_pcs(rt: Runtime, hints: Any = None) -> None:
    dispatch(rt, ("pcs", "ns", "sh"), hints)


def created_claims(kube: FakeKube) -> list[str]:
    return sorted(n for verb, n, _ in kube.calls if verb == "create" and n.startswith("Resource"))


def deleted(kube: FakeKube) -> list[str]:
    return sorted(n for verb, n, _ in kube.calls if verb == "delete")


def test_claims_created_once_and_not_again() -> None:
    pcs = sharing_pcs()
    rt, kube = runtime([pcs, *children(pcs)])
    reconcile_pcs(rt)
    assert created_claims(kube) == ["ResourceClaim/sh-0-sg-0-gpu", "ResourceClaim/sh-0-sg-1-gpu"]
    kube.calls.clear()
    reconcile_pcs(rt)
    assert created_claims(kube) == []


def test_existing_claims_are_not_posted_again() -> None:
    pcs = sharing_pcs()
    rt, kube = runtime([pcs, *children(pcs), *claims_of(pcs)])
    reconcile_pcs(rt)
    assert created_claims(kube) == [] and deleted(kube) == []


def test_pcsg_scale_out_creates_the_new_replicas_claim() -> None:
    """`kubectl scale pcsg` changes no PCS generation: the live count decides."""
    pcs = sharing_pcs()
    rt, kube = runtime([pcs, *children(pcs, group_replicas=3), *claims_of(pcs)])
    rt.claims_done[("uid-sh", 0)] = "whatever an earlier pass recorded"
    reconcile_pcs(rt, {0})
    assert created_claims(kube) == ["ResourceClaim/sh-0-sg-2-gpu"]


def test_pcsg_scale_in_deletes_the_removed_replicas_claim() -> None:
    pcs = sharing_pcs()
    objs = claims_of(pcs, group_replicas={"sg": 3})
    rt, kube = runtime([pcs, *children(pcs), *objs])
    reconcile_pcs(rt, {0})  # a PCSG event's hint
    assert deleted(kube) == ["ResourceClaim/sh-0-sg-2-gpu"]


def test_pcs_scale_in_deletes_claims_of_removed_replicas() -> None:
    pcs = sharing_pcs(replicas=2)
    objs = claims_of(pcs)
    pcs["spec"]["replicas"] = 1
    pcs["metadata"]["generation"] = 2
    rt, kube = runtime([pcs, *children(pcs), *objs])
    reconcile_pcs(rt)
    assert [n for n in deleted(kube) if n.startswith("Resource")] == [
        "ResourceClaim/sh-1-sg-0-gpu",
        "ResourceClaim/sh-1-sg-1-gpu",
    ]


def test_claim_objects_of_others_are_never_deleted() -> None:
    pcs = sharing_pcs()
    foreign = claims_of(pcs, group_replicas={"sg": 3})[-1]
    foreign["metadata"]["ownerReferences"] = []  # not ours: not even indexed as ours
    rt, kube = runtime([pcs, *children(pcs), *claims_of(pcs), foreign])
    reconcile_pcs(rt)
    assert deleted(kube) == []


def external_template(rv: str = "1") -> dict[str, Any]:
    spec = {"spec": {"devices": {"requests": [{"name": "x", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}}}
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": "ext", "namespace": "ns", "uid": "uid-ext", "resourceVersion": rv},
        "spec": spec,
    }


def test_external_template_from_the_index() -> None:
    pcs = sharing_pcs(external=True)
    rt, kube = runtime([pcs, *children(pcs)])
    reconcile_pcs(rt)
    assert "ResourceClaim/sh-0-ext" not in created_claims(kube)  # not there yet
    assert rt.external_users == {("ns", "ext"): {("ns", "sh")}}

    rt2, kube2 = runtime([pcs, *children(pcs), external_template()])
    reconcile_pcs(rt2)
    assert "ResourceClaim/sh-0-ext" in created_claims(kube2)
    claim = next(o for verb, n, o in kube2.calls if n == "ResourceClaim/sh-0-ext")
    assert claim["spec"] == external_template()["spec"]["spec"]
    assert claim["metadata"]["ownerReferences"][0]["uid"] == "uid-sh"


def test_index_claim_keeps_only_pcs_owned_claim_objects() -> None:
    pcs = sharing_pcs()
    (obj, *_) = claims_of(pcs)
    assert ("pcs", "ns", "sh") in (caches.index_claim(obj) or {})
    generated = copy.deepcopy(obj)
    generated["metadata"]["labels"] = {"app.kubernetes.io/part-of": "sh"}  # a pod's claim from our template
    assert caches.index_claim(generated) is None
    keys = caches.index_claim_template(external_template())
    assert list(keys) == [("template", "ns", "ext")]
