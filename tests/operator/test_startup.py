"""Startup parents (Grove §2.6) and the release rule."""

from __future__ import annotations

from typing import Any

from operator_fixtures import clique, make_pcs

from grove.api import constants as c
from grove.expansion import graph, startup
from grove.expansion import spec as specs


def test_anyorder_has_no_parents(disagg: dict[str, Any]) -> None:
    model = specs.load(disagg)
    assert all(startup.starts_after(model, 0, cl.name) == [] for cl in model.spec.template.cliques)
    assert not any(p["spec"].get("initContainers") for p in graph.expand(disagg).pods)


def test_inorder_parent_is_previous_clique() -> None:
    pcs = make_pcs(cliques=[clique("a", 1), clique("b", 2), clique("c", 1)], startup="CliqueStartupTypeInOrder")
    model = specs.load(pcs)
    assert startup.starts_after(model, 0, "a") == []
    assert startup.starts_after(model, 0, "b") == ["mn-0-a"]
    assert startup.starts_after(model, 3, "c") == ["mn-3-b"]


def test_explicit_parents() -> None:
    pcs = make_pcs(
        cliques=[clique("a", 1), clique("b", 1, startsAfter=["a"]), clique("c", 1, startsAfter=["a", "b"])],
        startup="CliqueStartupTypeExplicit",
    )
    model = specs.load(pcs)
    assert startup.starts_after(model, 0, "c") == ["mn-0-a", "mn-0-b"]


def test_group_parent_expands_to_base_replicas_and_scaled_stays_inside() -> None:
    pcs = make_pcs(
        cliques=[clique("fe", 1), clique("leader", 1, startsAfter=["fe"]), clique("worker", 2, startsAfter=["leader"])],
        groups=[{"name": "sg", "cliqueNames": ["leader", "worker"], "replicas": 4, "minAvailable": 2}],
        startup="CliqueStartupTypeExplicit",
    )
    model = specs.load(pcs)
    # Base-gang child: a standalone parent stays itself; a group parent expands to replicas 0..minAvailable-1.
    assert startup.starts_after(model, 0, "leader", 0) == ["mn-0-fe"]
    assert startup.starts_after(model, 0, "worker", 1) == ["mn-0-sg-0-leader", "mn-0-sg-1-leader"]
    # Scaled replica: only the same group replica; parents outside the group are dropped.
    assert startup.starts_after(model, 0, "worker", 3) == ["mn-0-sg-3-leader"]
    assert startup.starts_after(model, 0, "leader", 2) == []


def test_dependent_pods_get_annotation_and_wait_container() -> None:
    pcs = make_pcs(cliques=[clique("a", 1), clique("b", 2)], startup="CliqueStartupTypeInOrder")
    pods = {p["metadata"]["name"]: p for p in graph.expand(pcs, startup_wait_image="img:1").pods}
    assert c.ANNOTATION_STARTUP_RELEASED not in (pods["mn-0-a-0"]["metadata"].get("annotations") or {})
    dependent = pods["mn-0-b-1"]
    assert dependent["metadata"]["annotations"][c.ANNOTATION_STARTUP_RELEASED] == "false"
    init = dependent["spec"]["initContainers"][0]
    assert init["name"] == startup.STARTUP_CONTAINER and init["image"] == "img:1"
    assert f'{c.ANNOTATION_STARTUP_RELEASED}="true"' in init["command"][-1]  # the downward-API file format
    volume = next(v for v in dependent["spec"]["volumes"] if v["name"] == startup.STARTUP_VOLUME)
    assert volume["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.annotations"


def test_parents_ready() -> None:
    assert startup.parents_ready([], {}, {})
    assert not startup.parents_ready(["p"], {"p": 1}, {"p": 2})
    assert startup.parents_ready(["p", "q"], {"p": 2, "q": 1}, {"p": 2, "q": 1})
    assert not startup.parents_ready(["missing"], {}, {})
