"""The offline admission checks, with the API server's exact messages (checked against a real server by the
integration tests)."""

import copy
from typing import Any

from grove.validation.validator import admission_errors

POD = {"containers": [{"name": "main", "image": "pause"}]}


def pcs(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "grove.io/v1alpha1",
        "kind": "PodCliqueSet",
        "metadata": {"name": "x"},
        "spec": {"template": {"cliques": [{"name": "a", "spec": {"roleName": "a", "podSpec": copy.deepcopy(POD)}}]}},
    }
    obj["spec"].update(spec)
    return obj


def messages(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [str(e) for e in admission_errors(obj, old)]


def test_minimal_object_is_valid_after_defaults() -> None:
    assert messages(pcs()) == []


def test_minimum_message_matches_the_api_server() -> None:
    assert messages(pcs(replicas=-1)) == [
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        ".spec.replicas: Invalid value: -1: should be a non-negative integer",
    ]


def test_blocking_errors_skip_cel() -> None:
    obj = pcs(replicas="two")
    obj["spec"]["template"]["cliques"][0]["spec"]["minAvailable"] = 5  # a CEL error, not reported
    assert messages(obj) == [
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation",
    ]


def test_cel_errors_omit_object_values() -> None:
    obj = pcs()
    obj["spec"]["template"]["cliques"][0]["spec"].update(replicas=1, minAvailable=2)
    assert messages(obj) == [
        "spec.template.cliques[0].spec.minAvailable: Invalid value: spec.minAvailable must not be greater than "
        "spec.replicas"
    ]


def test_nulls_are_dropped_and_defaulted() -> None:
    obj = pcs(replicas=None)
    assert messages(obj) == []


def test_unknown_fields_are_decode_errors_only() -> None:
    obj = pcs(replicas=-1, bogus=True)
    errors = admission_errors(obj)
    assert [(e.field, e.origin) for e in errors] == [("spec.bogus", "decode")]


def test_transition_rules_need_an_old_object_and_ratchet() -> None:
    old = pcs()
    new = pcs()
    new["spec"]["template"]["cliqueStartupType"] = "CliqueStartupTypeInOrder"
    assert messages(new) == []
    assert messages(new, old) == [
        'spec.template.cliqueStartupType: Invalid value: "CliqueStartupTypeInOrder": '
        "spec.template.cliqueStartupType is immutable"
    ]
    # ratcheting: an invalid value stored earlier may stay as long as it does not change
    bad = pcs()
    bad["spec"]["template"]["cliques"][0]["spec"]["podSpec"]["nodeName"] = "n1"
    assert messages(bad) != []
    changed = copy.deepcopy(bad)
    changed["spec"]["replicas"] = 3
    assert messages(changed, bad) == []


def test_pack_domain_rules_allow_existing_objects() -> None:
    obj = pcs()
    obj["spec"]["template"]["topologyConstraint"] = {"packDomain": "rack"}
    assert any("packDomain is deprecated" in m for m in messages(obj))
    assert messages(obj, obj) == []


def test_generate_name_is_accepted() -> None:
    obj = pcs()
    obj["metadata"] = {"generateName": "x-"}
    assert messages(obj) == []
    obj["metadata"] = {}
    assert messages(obj) == [
        "metadata.name: Required value: name or generateName is required",
        "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation",
    ]
