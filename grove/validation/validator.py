"""Validate one object the way the API server admits it (create, or update with `old`: schema, CRD rules, then
the ValidatingAdmissionPolicy), then the operator's Python backstop rules.

`admission_errors` is what `kubectl apply --dry-run=server` would report (the hypothesis property test holds
it to that); `operator_errors` are the rules the operator checks before creating anything (SpecValid).
"""

import copy
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from grove.validation.cel import cel_errors
from grove.validation.errors import FieldError
from grove.validation.policy import policy_errors
from grove.validation.rules import validate_podcliqueset, validate_podcliqueset_update
from grove.validation.schema import (
    BLOCKING_MESSAGE,
    BLOCKING_TYPES,
    MISSING,
    apply_defaults,
    is_integer,
    unknown_fields,
    validate_values,
)

DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{DNS1123_SUBDOMAIN}')"
)


@dataclass(frozen=True)
class CRDInfo:
    """What the validator needs from one CRD."""

    api_version: str
    kind: str
    schema: dict[str, Any]
    spec_replicas_path: str | None


@lru_cache(maxsize=1)
def crd_index() -> dict[tuple[str, str], CRDInfo]:
    """(apiVersion, kind) -> CRD, from the generator (identical to api/crds; a test keeps them equal)."""
    from grove.api.crdgen import build_crds

    index: dict[tuple[str, str], CRDInfo] = {}
    for crd in build_crds().values():
        spec = crd["spec"]
        for version in spec["versions"]:
            api_version = f"{spec['group']}/{version['name']}"
            scale = version.get("subresources", {}).get("scale") or {}
            index[(api_version, spec["names"]["kind"])] = CRDInfo(
                api_version,
                spec["names"]["kind"],
                version["schema"]["openAPIV3Schema"],
                scale.get("specReplicasPath"),
            )
    return index


@dataclass
class Result:
    """Errors for one object: at admission (the API server's verdict) and afterwards (the operator's)."""

    admission: list[FieldError] = field(default_factory=list)
    operator: list[FieldError] = field(default_factory=list)

    @property
    def errors(self) -> list[FieldError]:
        """All errors."""
        return [*self.admission, *self.operator]

    @property
    def valid(self) -> bool:
        """No error at all."""
        return not self.admission and not self.operator


def metadata_errors(obj: dict[str, Any]) -> list[FieldError]:
    """ObjectMeta checks the API server applies to every custom resource (name format)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [FieldError("metadata.name", "name or generateName is required", "Required", origin="schema")]
    name = meta.get("name")
    if not name:
        if meta.get("generateName"):
            return []
        return [FieldError("metadata.name", "name or generateName is required", "Required", origin="schema")]
    errors = []
    if not isinstance(name, str) or not re.fullmatch(DNS1123_SUBDOMAIN, name):
        errors.append(FieldError("metadata.name", SUBDOMAIN_MESSAGE, value=name, origin="schema"))
    elif len(name) > 253:
        errors.append(FieldError("metadata.name", "must be no more than 253 characters", value=name, origin="schema"))
    return errors


def scale_errors(obj: dict[str, Any], info: CRDInfo) -> list[FieldError]:
    """The /scale subresource's check on specReplicasPath (reported with the JSONPath as the field)."""
    if not info.spec_replicas_path:
        return []
    value: Any = obj
    for part in info.spec_replicas_path.lstrip(".").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if is_integer(value) and value < 0:
        return [FieldError(info.spec_replicas_path, "should be a non-negative integer", value=value, origin="schema")]
    return []


def admission_errors(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """What the API server reports for creating `obj` (or updating `old` to `obj`), in its order."""
    info = crd_index().get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if info is None:
        return [
            FieldError(
                "kind",
                f"no grove-py CRD serves {obj.get('apiVersion')}/{obj.get('kind')}",
                "Unknown",
                origin="decode",
            )
        ]
    unknown = unknown_fields(obj, info.schema)
    if unknown:
        return [FieldError(path, f'unknown field "{path}"', "Unknown", origin="decode") for path in unknown]
    new = apply_defaults(copy.deepcopy(obj), info.schema)
    previous: Any = MISSING if old is None else apply_defaults(copy.deepcopy(old), info.schema)
    errors = metadata_errors(new) if old is None else []
    values, duplicates = validate_values(new, info.schema, previous)
    errors += values + scale_errors(new, info) + duplicates
    if any(error.type in BLOCKING_TYPES for error in errors):
        errors.append(FieldError("<nil>", BLOCKING_MESSAGE, value=None, origin="schema"))
        return errors
    errors += cel_errors(new, info.schema, previous)
    if errors:
        return errors
    # Validating admission runs after the CRD's own validation passed (the policy's first denial only).
    return policy_errors(new, None if previous is MISSING else previous)


def validate_object(obj: dict[str, Any], old: dict[str, Any] | None = None) -> Result:
    """Admission errors, then (only for admitted PodCliqueSets) the operator's backstop rules."""
    result = Result(admission=admission_errors(obj, old))
    if not result.admission and obj.get("kind") == "PodCliqueSet":
        result.operator = validate_podcliqueset(obj)
        if old is not None:
            result.operator += validate_podcliqueset_update(old, obj)
    return result
