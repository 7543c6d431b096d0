"""FieldError: one problem with one field, printed the way the Kubernetes API server prints it.

The offline checker, the operator and the tests compare errors with the API server's `status.details.causes`
by field path, so `field` uses the server's spelling (`spec.template.cliques[1].spec.startsAfter`) and
`__str__` reproduces `field.Error.Error()` from k8s.io/apimachinery.
"""

import json
from dataclasses import dataclass
from typing import Any, Literal

ErrorType = Literal[
    "Invalid",
    "Required",
    "Forbidden",
    "Duplicate",
    "NotSupported",
    "TooLong",
    "TooMany",
    "TypeInvalid",
    "Unknown",
    "Denied",
]
Origin = Literal["schema", "cel", "policy", "python", "decode"]


class _Omitted:
    """field.OmitValueType: the API server prints CEL errors without a value."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omitted()


def format_value(value: Any) -> str:
    """A value as field.Error prints it: strings quoted, numbers and booleans bare, others as JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    """A validation error for one field.

    `field` is the path as the API server reports it (`cause.field`), `message` the detail text (for CEL rules
    the rule's message), `type` the field.ErrorType, `origin` which layer found it: the OpenAPI schema, a CEL
    rule, the ValidatingAdmissionPolicy (`Denied`: one cause without a field, the message as the server
    words it), an operator backstop rule (`grove.validation.rules`, reported in the SpecValid condition)
    or strict decoding (unknown fields).
    """

    field: str
    message: str
    type: ErrorType = "Invalid"
    value: Any = None
    origin: Origin = "python"

    def body(self) -> str:
        """The part after `<field>: `, as in field.Error.ErrorBody()."""
        if self.type == "Invalid":
            if self.value is OMIT:
                return f"Invalid value: {self.message}"
            return f"Invalid value: {format_value(self.value)}: {self.message}"
        if self.type == "TypeInvalid":
            return f"Invalid value: {format_value(self.value)}: {self.message}"
        if self.type == "Required":
            return "Required value" + (f": {self.message}" if self.message else "")
        if self.type == "Forbidden":
            return "Forbidden" + (f": {self.message}" if self.message else "")
        if self.type == "Duplicate":
            return f"Duplicate value: {format_value(self.value)}"
        if self.type == "NotSupported":
            return f"Unsupported value: {format_value(self.value)}: {self.message}"
        if self.type == "TooLong":
            return f"Too long: {self.message}"
        if self.type == "TooMany":
            return f"Too many: {format_value(self.value)}: {self.message}"
        return self.message

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()
