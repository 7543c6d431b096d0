"""Rules only the operator enforces: the Python backstop (grove.validation.rules, the SpecValid condition) must
have an admission twin for every rule, so `kubectl apply` refuses what the operator would refuse.

OPERATOR_ONLY names each exception with the reason admission cannot enforce it; today there is none.
"""

from collections.abc import Callable
from typing import Any

import pytest
from api_corpus import load_cases

from grove.validation.errors import FieldError
from grove.validation.rules import (
    check_mnnvl_annotation,
    check_name_budget,
    check_starts_after_cycles,
    validate_podcliqueset_update,
)
from grove.validation.validator import admission_errors

CASES = load_cases()

OPERATOR_ONLY: dict[str, str] = {}

Check = Callable[[dict[str, Any], dict[str, Any] | None], list[FieldError]]
BACKSTOP: dict[str, Check] = {
    "starts-after-cycles": lambda obj, old: check_starts_after_cycles(obj["spec"]["template"]),
    "name-budget": lambda obj, old: check_name_budget(obj),
    "mnnvl-value": lambda obj, old: check_mnnvl_annotation(obj),
    "mnnvl-immutable": lambda obj, old: validate_podcliqueset_update(old, obj) if old is not None else [],
}


@pytest.mark.parametrize("rule", sorted(BACKSTOP))
def test_backstop_rule_is_enforced_at_admission(rule: str) -> None:
    fired = [case for case in CASES if BACKSTOP[rule](case.obj, case.old)]
    assert fired, f"no corpus case exercises the operator's {rule} check"
    admitted = [case.name for case in fired if not admission_errors(case.obj, case.old)]
    if rule in OPERATOR_ONLY:
        assert admitted, f"{rule} is listed as operator-only but admission refuses every case"
    else:
        assert admitted == [], f"{rule}: the API server admits {admitted}, only the operator refuses them"


def test_operator_only_rules_are_backstop_rules_with_a_reason() -> None:
    assert set(OPERATOR_ONLY) <= set(BACKSTOP)
    assert all(reason.strip() for reason in OPERATOR_ONLY.values())
