"""`grove validate`: examples pass, every corpus manifest is refused naming its field (offline)."""

import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from api_corpus import Case, load_cases, load_valid_cases

from grove.cli import main
from grove.validation.validator import validate_object

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
CASES = load_cases()
VALID = load_valid_cases()
INDEX = re.compile(r"\[\d+\]")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["validate", *argv])
    return code, out.getvalue()


def test_corpus_has_one_case_per_rule_at_least() -> None:
    assert len(CASES) >= 100 and len(VALID) >= 20
    # the same error twice only where Grove's defaulting is what makes the second object invalid
    distinct = [c for c in CASES if "defaulting" not in c.grove]
    assert len({c.field + c.message for c in distinct}) == len(distinct)


def test_every_example_is_valid() -> None:
    assert len(EXAMPLES) >= 8
    code, out = run(*map(str, EXAMPLES))
    assert code == 0, out
    assert out.count(" is valid") == len(EXAMPLES)


def test_examples_start_with_a_comment() -> None:
    for path in EXAMPLES:
        assert path.read_text().startswith("# "), path


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case_is_refused_naming_the_field(case: Case) -> None:
    argv = [str(case.path)] if case.old_path is None else ["--old", str(case.old_path), str(case.path)]
    code, out = run(*argv)
    assert code == 1, out
    assert case.field in out and case.message in out, out
    errors = validate_object(case.obj, case.old)
    assert any(e.field == case.field and case.message in str(e) for e in errors.errors), errors
    # every rule is enforced at admission (test_api_operator_only lists the exceptions: none)
    assert bool(errors.admission) is case.server_refuses


@pytest.mark.parametrize("case", [c for c in CASES if c.old_path is not None], ids=lambda c: c.name)
def test_update_cases_are_valid_as_creates(case: Case) -> None:
    """The transition rules alone refuse them: both objects are fine when created."""
    assert case.old is not None
    assert validate_object(case.old).valid, validate_object(case.old).errors
    assert validate_object(case.obj).valid, validate_object(case.obj).errors


def test_multi_document_files_and_exit_code(tmp_path: Path) -> None:
    good = EXAMPLES[0].read_text()
    bad = next(c for c in CASES if c.name == "replicas-negative").path.read_text()
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text(good + "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + bad)
    code, out = run(str(mixed))
    assert code == 1
    assert "is valid" in out and "spec.replicas: Invalid value: -1" in out
    only_good = tmp_path / "good.yaml"
    only_good.write_text(good)
    assert run(str(only_good))[0] == 0


def test_unreadable_file_is_invalid(tmp_path: Path) -> None:
    code, out = run(str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in out


def _normalized(message: str) -> str:
    """An error message with list indices as `[]` and the policy's prefix removed: the catalog's `message`."""
    return INDEX.sub("[]", message.split(" denied request: ", 1)[-1])


def test_every_podcliqueset_cel_rule_is_exercised_by_the_corpus() -> None:
    """Each rule of the catalog must refuse at least one corpus manifest (else it is untested)."""
    from grove.validation.celrules import rules_for

    messages = {_normalized(e.message) for case in CASES for e in validate_object(case.obj, case.old).errors}
    uncovered = [rule.name for rule in rules_for("PodCliqueSet") if _normalized(rule.message) not in messages]
    assert uncovered == []


def test_every_policy_validation_is_exercised_by_the_corpus() -> None:
    from grove.validation.policy import VALIDATIONS

    messages = {_normalized(e.message) for case in CASES for e in validate_object(case.obj, case.old).admission}
    uncovered = [v.name for v in VALIDATIONS if not any(m.startswith(_normalized(v.message)) for m in messages)]
    assert uncovered == []


def test_every_case_cites_the_grove_rule_it_mirrors() -> None:
    for case in [*CASES, *VALID]:
        assert case.grove and case.rule, case.name
        assert case.grove.startswith(("grove-api.md", "core/v1", "strict decoding", "none: ")), case.grove


@pytest.mark.parametrize("case", VALID, ids=[c.name for c in VALID])
def test_valid_case_is_valid(case: Case) -> None:
    """What Grove admits (and grove-py's operator can run) is admitted, as a create and as an update."""
    result = validate_object(case.obj, case.old)
    assert result.valid, [str(e) for e in result.errors]
    if case.old is not None:
        assert validate_object(case.old).valid
