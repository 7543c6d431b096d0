"""Offline evaluation of a CRD schema's `x-kubernetes-validations` with cel-python, as the API server does.

Semantics kept from apiextensions-apiserver:
- `self` is the (defaulted) value at the node carrying the rule; at the root it sees only `metadata.name`
  and `metadata.generateName` of the object's metadata;
- a transition rule (mentions `oldSelf`) runs only on update and only where the old value correlates
  (object properties, list-type map items by key); with `optionalOldSelf` it always runs and
  `oldSelf.hasValue()` says whether there is an old value;
- on update, a rule without `oldSelf` is skipped where the value did not change (ratcheting);
- a false result is reported on the node's path plus `fieldPath` (message from `messageExpression` when it
  yields a non-empty string, else `message`), with the error type chosen by `reason`
  and no value for objects and lists (`spec.x: Invalid value: <message>`), the value for scalars.

cel-python lacks CEL optionals; `oldSelf.hasValue()` is the only optional call the catalog uses and is
substituted with a literal before compiling.
"""

from functools import lru_cache
from typing import Any

import celpy

from grove.validation.errors import OMIT, ErrorType, FieldError
from grove.validation.schema import MISSING, Schema, Walker

REASON_TYPES: dict[str, ErrorType] = {
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required",
    "FieldValueDuplicate": "Duplicate",
    "FieldValueInvalid": "Invalid",
}
HAS_VALUE = "oldSelf.hasValue()"
# The tree interpreter: cel-python 0.5's transpiling CompiledRunner evaluates both sides of `||`, which breaks
# the `!has(x) || x.y` guards every rule relies on.
_ENV = celpy.Environment()


@lru_cache(maxsize=512)
def compiled(rule: str) -> Any:
    """A cel-python program for one rule text (cached: the same rules run for every object)."""
    return _ENV.program(_ENV.compile(rule))


def evaluate(rule: str, self_value: Any, old_value: Any = MISSING, *, converted: bool = False) -> Any:
    """Evaluate a rule; returns the CEL result (raises celpy.CELEvalError on runtime errors).

    With `converted`, the values are already CEL values (the walker converts each node once for all its rules).
    """
    text = rule
    if HAS_VALUE in text:
        text = text.replace(HAS_VALUE, "false" if old_value is MISSING else "true")
    activation = {"self": self_value if converted else celpy.json_to_cel(self_value)}
    if old_value is not MISSING and "oldSelf" in text:
        activation["oldSelf"] = old_value if converted else celpy.json_to_cel(old_value)
    return compiled(text).evaluate(activation)


def root_view(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as root CEL rules see it: metadata reduced to name and generateName."""
    view = dict(obj)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        view["metadata"] = {k: meta[k] for k in ("name", "generateName") if k in meta}
    return view


def join_field_path(path: str, field_path: str | None) -> str:
    """The node path with a rule's fieldPath appended (`.spec.x` or `spec.x`)."""
    if not field_path:
        return path
    suffix = field_path.lstrip(".")
    if field_path.startswith("["):
        return f"{path}{field_path}"
    return f"{path}.{suffix}" if path else suffix


def _error_for(rule: dict[str, Any], value: Any, path: str, message: str) -> FieldError:
    """The field.Error for a failed rule: scalar values are shown, objects and lists are not."""
    error_type = REASON_TYPES.get(rule.get("reason") or "FieldValueInvalid", "Invalid")
    where = join_field_path(path, rule.get("fieldPath"))
    shown = OMIT if isinstance(value, dict | list) else value
    if error_type == "Duplicate":
        return FieldError(where, "", "Duplicate", shown, "cel")
    return FieldError(where, message, error_type, shown, "cel")


def _message(rule: dict[str, Any], self_value: Any, old_self: Any) -> str | None:
    """A rule's messageExpression result; None (use `message`) when absent, failing or empty, as the server does."""
    expression = rule.get("messageExpression")
    if not expression:
        return None
    try:
        result = evaluate(expression, self_value, old_self, converted=True)
    except celpy.CELEvalError:
        return None
    if isinstance(result, celpy.CELEvalError) or not isinstance(result, str) or not result:
        return None
    return str(result)


def cel_errors(obj: Any, schema: Schema, old: Any = MISSING) -> list[FieldError]:
    """Evaluate every rule of `schema` against `obj` (and `old` on updates)."""
    errors: list[FieldError] = []
    is_update = old is not MISSING

    def visit(value: Any, node: Schema, path: str, old_value: Any) -> None:
        rules = node.get("x-kubernetes-validations")
        if not rules:
            return
        self_value = celpy.json_to_cel(root_view(value) if path == "" and isinstance(value, dict) else value)
        old_self = old_value
        if old_value is not MISSING:
            old_self = celpy.json_to_cel(
                root_view(old_value) if path == "" and isinstance(old_value, dict) else old_value
            )
        for rule in rules:
            text = rule["rule"]
            transition = "oldSelf" in text
            if transition and not rule.get("optionalOldSelf") and old_self is MISSING:
                continue
            if not transition and is_update and old_value is not MISSING and old_value == value:
                continue  # ratcheting
            try:
                result = evaluate(text, self_value, old_self, converted=True)
            except celpy.CELEvalError as error:
                errors.append(_error_for(rule, value, path, f"{error.args[0]} evaluating rule: {text}"))
                continue
            if isinstance(result, celpy.CELEvalError):
                errors.append(_error_for(rule, value, path, f"{result.args[0]} evaluating rule: {text}"))
            elif not bool(result):
                message = _message(rule, self_value, old_self) or rule.get("message") or f"failed rule: {text}"
                errors.append(_error_for(rule, value, path, message))

    Walker(visit).walk(obj, schema, "", old)
    return errors
