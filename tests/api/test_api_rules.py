"""The operator's backstop rules (validate_podcliqueset): cycles, name budget, mnnvl annotation."""

from typing import Any

import pytest

from grove.validation import validate_podcliqueset
from grove.validation.rules import strongly_connected_components, validate_podcliqueset_update


def make(after: dict[str, list[str]], startup: str = "CliqueStartupTypeExplicit", name: str = "svc") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "template": {
                "cliqueStartupType": startup,
                "cliques": [{"name": n, "spec": {"startsAfter": deps, "podSpec": {}}} for n, deps in after.items()],
            }
        },
    }


def fields(errors: list[Any]) -> set[str]:
    return {e.field for e in errors}


def test_acyclic_graph_is_valid() -> None:
    assert validate_podcliqueset(make({"a": [], "b": ["a"], "c": ["a", "b"]})) == []


def test_two_cycle_is_reported_on_both_cliques() -> None:
    errors = validate_podcliqueset(make({"a": ["b"], "b": ["a"], "c": []}))
    assert fields(errors) == {"spec.template.cliques[0].spec.startsAfter", "spec.template.cliques[1].spec.startsAfter"}
    assert "a -> b -> a" in errors[0].message


def test_long_cycle_and_tail() -> None:
    names = [f"c{i}" for i in range(50)]
    graph = {n: [names[(i + 1) % 50]] for i, n in enumerate(names)}
    graph["tail"] = ["c0"]
    errors = validate_podcliqueset(make(graph))
    assert len(errors) == 50 and "spec.template.cliques[50].spec.startsAfter" not in fields(errors)


def test_cycles_only_matter_for_explicit_startup() -> None:
    assert validate_podcliqueset(make({"a": ["b"], "b": ["a"]}, startup="CliqueStartupTypeInOrder")) == []


def test_unknown_and_self_references_are_not_cycles_here() -> None:
    # unknown names and self references are CEL rules; the Python check must not crash or double-report
    assert validate_podcliqueset(make({"a": ["zz", "a"], "b": ["a"]})) == []


def test_scc_matches_brute_force() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": ["e"], "e": ["d"], "f": []}
    components = {frozenset(c) for c in strongly_connected_components(graph)}
    assert components == {frozenset("abc"), frozenset("de"), frozenset("f")}


def test_name_budget_reports_every_contributing_field() -> None:
    pcs = make({"a": [], "b": []}, startup="CliqueStartupTypeAnyOrder", name="n" * 40)
    pcs["spec"]["template"]["cliques"][1]["name"] = "b" * 6
    pcs["spec"]["template"]["podCliqueScalingGroups"] = [{"name": "g" * 5, "cliqueNames": ["a"]}]
    errors = validate_podcliqueset(pcs)
    assert fields(errors) == {
        "spec.template.cliques[0].name",
        "spec.template.cliques[1].name",
        "spec.template.podCliqueScalingGroups[0].name",
        "spec.template.podCliqueScalingGroups[0].cliqueNames[0]",
        "metadata.name",
    }
    assert any("got 46" in e.message for e in errors)


def test_name_budget_boundary() -> None:
    pcs = make({"a" * 5: []}, startup="CliqueStartupTypeAnyOrder", name="n" * 40)
    assert validate_podcliqueset(pcs) == []


@pytest.mark.parametrize(("value", "ok"), [("none", True), ("nvl72-a", True), ("NVL", False), ("a" * 64, False)])
def test_mnnvl_annotation(value: str, ok: bool) -> None:
    pcs = make({"a": []}, startup="CliqueStartupTypeAnyOrder")
    pcs["spec"]["template"]["cliques"][0]["annotations"] = {"grove.io/mnnvl-group": value}
    pcs["metadata"]["annotations"] = {"grove.io/mnnvl-group": value}
    errors = validate_podcliqueset(pcs)
    assert (errors == []) is ok
    if not ok:
        assert fields(errors) == {
            "metadata.annotations[grove.io/mnnvl-group]",
            "spec.template.cliques[0].annotations[grove.io/mnnvl-group]",
        }


def test_mnnvl_annotation_is_immutable() -> None:
    old = make({"a": []}, startup="CliqueStartupTypeAnyOrder")
    new = make({"a": []}, startup="CliqueStartupTypeAnyOrder")
    new["spec"]["template"]["cliques"][0]["annotations"] = {"grove.io/mnnvl-group": "g1"}
    assert fields(validate_podcliqueset_update(old, new)) == {
        "spec.template.cliques[0].annotations[grove.io/mnnvl-group]"
    }
    assert validate_podcliqueset_update(new, new) == []


@pytest.mark.parametrize("garbage", [{}, {"spec": None}, {"spec": {"template": {"cliques": "x"}}}, {"metadata": 3}])
def test_garbage_does_not_crash(garbage: dict[str, Any]) -> None:
    assert validate_podcliqueset(garbage) == []
