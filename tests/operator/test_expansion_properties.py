"""Properties of the expansion over random PodCliqueSet shapes (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from operator_fixtures import clique, make_pcs

from grove.api import constants as c
from grove.expansion import graph


@st.composite
def shapes(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    names = [f"c{k}" for k in range(n)]
    cliques = []
    for name in names:
        replicas = draw(st.integers(1, 3))
        cliques.append(clique(name, replicas, draw(st.integers(1, replicas))))
    groups = []
    grouped = draw(st.lists(st.sampled_from(names), unique=True, max_size=n))
    if grouped:
        replicas = draw(st.integers(1, 3))
        groups.append(
            {"name": "sg", "cliqueNames": grouped, "replicas": replicas, "minAvailable": draw(st.integers(1, replicas))}
        )
    startup = draw(st.sampled_from([None, "CliqueStartupTypeInOrder"]))
    return make_pcs("p", draw(st.integers(0, 3)), cliques, groups or None, startup)


@settings(max_examples=60, deadline=None)
@given(shapes())
def test_graph_invariants(pcs: dict[str, Any]) -> None:
    g = graph.expand(pcs)
    objs = g.objects()
    keys = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(keys) == len(set(keys))  # unique names per kind
    present = set(keys) | {("PodCliqueSet", "p")}
    for obj in objs:  # every controller owner is part of the graph
        refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")]
        assert len(refs) == 1 and (refs[0]["kind"], refs[0]["name"]) in present
    # Every PodClique is in exactly one gang, as the gang named by its label; every pod is referenced once.
    membership: dict[str, str] = {}
    referenced: list[str] = []
    for gang in g.podgangs:
        for group in gang["spec"]["podgroups"]:
            assert group["name"] not in membership
            membership[group["name"]] = gang["metadata"]["name"]
            referenced.extend(r["name"] for r in group["podReferences"])
    for pclq in g.podcliques:
        assert membership[pclq["metadata"]["name"]] == pclq["metadata"]["labels"][c.LABEL_PODGANG]
    assert sorted(referenced) == sorted(p["metadata"]["name"] for p in g.pods)
    # Pod count: replicas x (standalone pods + group replicas x member pods).
    template = pcs["spec"]["template"]
    group = (template.get("podCliqueScalingGroups") or [None])[0]
    members = set(group["cliqueNames"]) if group else set()
    per_replica = sum(
        cl["spec"]["replicas"] * (group["replicas"] if cl["name"] in members else 1)  # type: ignore[index]
        for cl in template["cliques"]
    )
    assert len(g.pods) == pcs["spec"]["replicas"] * per_replica
    # Pods are gated, indexed densely from 0, and named after their hostname.
    for pod in g.pods:
        assert pod["spec"]["schedulingGates"][0]["name"] == c.SCHEDULING_GATE
        assert pod["metadata"]["name"] == pod["spec"]["hostname"]
        assert pod["metadata"]["name"].endswith("-" + pod["metadata"]["labels"][c.LABEL_POD_INDEX])
