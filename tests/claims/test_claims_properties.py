"""Properties over random PodCliqueSets: every claim a pod references is an object claim_objects creates, pod
claim entries are valid and unique, containers reference only the pod's entries, and nothing is stale at
the counts the objects were made for."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grove.claims import claim_objects, inject_claims, is_stale, set_level_objects

NAMES = ["a", "b", "c", "d"]
TEMPLATES = [
    {"name": t, "templateSpec": {"spec": {"devices": {"requests": [{"name": "r", "exactly": {
        "deviceClassName": "gpu.nvidia.com"}}]}}}}
    for t in ("t1", "t2")
]


def sharing(filter_keys: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    entry = st.fixed_dictionaries(
        {"name": st.sampled_from(["t1", "t2"]), "scope": st.sampled_from(["AllReplicas", "PerReplica"])},
        optional={"filter": st.fixed_dictionaries({}, optional={k: st.lists(st.sampled_from([*NAMES, "g0", "g1"]),
                                                                                    max_size=3) for k in filter_keys})}
        if filter_keys else {},
    )
    return st.lists(entry, max_size=3, unique_by=lambda e: (e["name"], e["scope"]))


@st.composite
def podcliquesets(draw: st.DrawFn) -> dict[str, Any]:
    cliques = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    grouped = draw(st.lists(st.sampled_from(cliques), unique=True, max_size=len(cliques)))
    groups = []
    if grouped:
        split = draw(st.integers(0, len(grouped)))
        for i, members in enumerate([grouped[:split], grouped[split:]]):
            if members:
                groups.append({"name": f"g{i}", "cliqueNames": members, "replicas": draw(st.integers(1, 2)),
                               "resourceSharing": draw(sharing(["childCliqueNames"]))})
    out_cliques = []
    for name in cliques:
        spec: dict[str, Any] = {"replicas": draw(st.integers(1, 2)),
                                "podSpec": {"containers": [{"name": "m", "image": "x"}],
                                            "initContainers": [{"name": "i", "image": "x"}]}}
        devices = draw(st.one_of(st.none(), st.fixed_dictionaries(
            {"gpu": st.just({"count": 2}), "sharing": st.sampled_from(["PerPod", "PerReplica", "AllReplicas"])},
            optional={"computeDomain": st.just({})})))
        if devices:
            spec["devices"] = devices
        clique: dict[str, Any] = {"name": name, "spec": spec, "resourceSharing": draw(sharing([]))}
        if draw(st.booleans()):
            clique["annotations"] = {"grove.io/mnnvl-group": draw(st.sampled_from(["x", "none"]))}
        out_cliques.append(clique)
    template: dict[str, Any] = {"cliques": out_cliques, "resourceClaimTemplates": TEMPLATES,
                                "resourceSharing": draw(sharing(["childCliqueNames", "childScalingGroupNames"]))}
    if groups:
        template["podCliqueScalingGroups"] = groups
    return {"apiVersion": "grove.io/v1alpha1", "kind": "PodCliqueSet",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"replicas": draw(st.integers(1, 2)), "template": template}}


def pods(doc: dict[str, Any]) -> list[tuple[str, int, str | None, int | None, int, dict[str, Any]]]:
    groups = {m: g for g in doc["spec"]["template"].get("podCliqueScalingGroups") or [] for m in g["cliqueNames"]}
    out = []
    for replica in range(doc["spec"]["replicas"]):
        for clique in doc["spec"]["template"]["cliques"]:
            group = groups.get(clique["name"])
            for j in range(group["replicas"] if group else 1):
                for k in range(clique["spec"]["replicas"]):
                    out.append((clique["name"], replica, group["name"] if group else None, j if group else None, k,
                                clique["spec"]["podSpec"]))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(podcliquesets())
def test_references_resolve_to_created_objects(doc: dict[str, Any]) -> None:
    objects = [o for r in range(doc["spec"]["replicas"]) for o in claim_objects(doc, r)] + set_level_objects(doc)
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "ResourceClaim"}
    templates = {o["metadata"]["name"] for o in objects if o["kind"] == "ComputeDomain"}
    templates |= {o["metadata"]["name"] for o in objects if o["kind"] == "ResourceClaimTemplate"}
    assert not any(is_stale(doc, o) for o in objects)
    for clique, replica, group, j, k, pod_spec in pods(doc):
        out = inject_claims(pod_spec, doc, clique, replica, group, j, k)
        entries = out.get("resourceClaims") or []
        local = [e["name"] for e in entries]
        assert len(local) == len(set(local))
        assert all(len(n) <= 63 for n in local)
        for e in entries:
            if "resourceClaimName" in e:
                assert e["resourceClaimName"] in claims
            else:  # a per-pod template: our devices template or a ComputeDomain's channel template
                assert e["resourceClaimTemplateName"] in templates
        for ct in out["containers"] + out["initContainers"]:
            assert {c["name"] for c in (ct.get("resources") or {}).get("claims") or []} <= set(local)
