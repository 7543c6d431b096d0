"""The API server's handling of a custom resource's structural schema, reimplemented for offline use.

Three steps, in the server's order (apiextensions-apiserver):
1. strict decoding: fields the schema does not declare are errors (`kubectl` sends fieldValidation=Strict);
2. defaulting: `null`s of non-nullable fields are dropped, then missing properties get their `default`;
3. validation: OpenAPI value validations (type, required, enum, bounds, pattern, ...) and the
   x-kubernetes-list-type map/set uniqueness, with the server's messages (kube-openapi + apimachinery
   `field.Error`). On update, errors on values equal to the stored ones are ratcheted away.

CEL rules are in `grove.validation.cel`; `grove.validation.validator` runs everything.
"""

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from grove.validation.errors import FieldError

Schema = Mapping[str, Any]

# ObjectMeta fields (strict decoding of metadata is done against the Go type, not the CRD schema).
OBJECT_META_FIELDS = {
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
}

# field.Error types that stop CEL evaluation (apiextensions `hasBlockingErr`).
BLOCKING_TYPES = {"NotSupported", "Required", "TooLong", "TooMany", "TypeInvalid"}
BLOCKING_MESSAGE = (
    "some validation rules were not checked because the object was invalid; correct the existing errors to "
    "complete validation"
)


def join(path: str, name: str) -> str:
    """field.Path.Child."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    """field.Path.Index."""
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """field.Path.Key."""
    return f"{path}[{k}]"


def is_integer(value: Any) -> bool:
    """JSON integer (bool is not one, a float with integral value is, as in the Go JSON decoder)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def json_type(value: Any) -> str:
    """The JSON type name kube-openapi reports for a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_matches(schema_type: str, value: Any) -> bool:
    """Whether a value has the schema's type."""
    if schema_type == "integer":
        return is_integer(value)
    if schema_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if schema_type == "boolean":
        return isinstance(value, bool)
    if schema_type == "string":
        return isinstance(value, str)
    if schema_type == "array":
        return isinstance(value, list)
    if schema_type == "object":
        return isinstance(value, dict)
    return True


def _go_number(value: Any) -> str:
    """A number as Go's %v prints it in kube-openapi messages."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def items_schema(schema: Schema) -> Schema:
    """The schema of a list's items (empty when undeclared)."""
    items = schema.get("items")
    return items if isinstance(items, Mapping) else {}


def child_schema(schema: Schema, name: str) -> Schema | None:
    """The schema of an object's property `name` (None when the schema does not declare it)."""
    props = schema.get("properties")
    if isinstance(props, Mapping) and name in props:
        prop: Schema = props[name]
        return prop
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        return extra
    return None


def preserves_unknown(schema: Schema) -> bool:
    """x-kubernetes-preserve-unknown-fields (or a free-form object)."""
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


# --------------------------------------------------------------------------- strict decoding


def unknown_fields(obj: Any, schema: Schema, path: str = "", root: bool = True) -> list[str]:
    """Paths of fields the schema does not declare, as strict decoding reports them."""
    found: list[str] = []
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name, value in obj.items():
            here = join(path, name)
            if root and name == "metadata":
                if isinstance(value, dict):
                    found += [join(here, k) for k in value if k not in OBJECT_META_FIELDS]
                continue
            if name in props:
                found += unknown_fields(value, props[name], here, root=False)
            elif isinstance(extra, Mapping):
                found += unknown_fields(value, extra, here, root=False)
            elif not preserves_unknown(schema) and extra is not True and "type" in schema:
                found.append(here)
    elif isinstance(obj, list):
        item = items_schema(schema)
        for i, value in enumerate(obj):
            found += unknown_fields(value, item, index(path, i), root=False)
    return found


# --------------------------------------------------------------------------- defaulting


def apply_defaults(obj: Any, schema: Schema) -> Any:
    """Structural defaulting, in place: drop nulls of non-nullable fields, then fill missing defaults."""
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for name in list(obj):
            prop = props.get(name) if name in props else (extra if isinstance(extra, Mapping) else None)
            if obj[name] is None and prop is not None and not prop.get("nullable"):
                del obj[name]
        for name, prop in props.items():
            if name not in obj and "default" in prop:
                obj[name] = copy.deepcopy(prop["default"])
        for name, value in obj.items():
            prop = props.get(name) if name in props else (extra if isinstance(extra, Mapping) else None)
            if prop is not None:
                apply_defaults(value, prop)
    elif isinstance(obj, list):
        item = items_schema(schema)
        for value in obj:
            apply_defaults(value, item)
    return obj


# --------------------------------------------------------------------------- correlation for updates


def list_map_keys(schema: Schema) -> list[str] | None:
    """The map keys of a list-type map (None for other lists)."""
    if schema.get("x-kubernetes-list-type") == "map":
        return list(schema.get("x-kubernetes-list-map-keys") or [])
    return None


def correlate_item(item: Any, old_list: Any, schema: Schema) -> Any:
    """The old element with the same keys (list-type map), or None: other lists do not correlate."""
    keys = list_map_keys(schema)
    if keys is None or not isinstance(old_list, list) or not isinstance(item, dict):
        return None
    wanted = tuple(item.get(k) for k in keys)
    for old in old_list:
        if isinstance(old, dict) and tuple(old.get(k) for k in keys) == wanted:
            return old
    return None


MISSING = object()


def correlate_child(old: Any, name: str) -> Any:
    """The old value of a property (MISSING when there is none)."""
    if isinstance(old, dict) and name in old:
        return old[name]
    return MISSING


# --------------------------------------------------------------------------- value validation


@dataclass
class Walker:
    """Walks an object with its schema (and the correlated old object on updates), calling `visit` per node."""

    visit: Callable[[Any, Schema, str, Any], None]
    # How a map entry's path is spelled: CEL reports `labels[app]`, the OpenAPI validator `labels.app`.
    map_child: Callable[[str, str], str] = key

    def walk(self, value: Any, schema: Schema, path: str, old: Any = MISSING) -> None:
        """Depth-first, parents before children."""
        self.visit(value, schema, path, old)
        if isinstance(value, dict) and (schema.get("type") == "object" or "properties" in schema):
            props = schema.get("properties") or {}
            extra = schema.get("additionalProperties")
            for name, child in value.items():
                prop = props.get(name) if name in props else (extra if isinstance(extra, Mapping) else None)
                if prop is None:
                    continue
                here = self.map_child(path, name) if name not in props else join(path, name)
                self.walk(child, prop, here, correlate_child(old, name))
        elif isinstance(value, list) and schema.get("type") == "array":
            item = items_schema(schema)
            for i, child in enumerate(value):
                match = correlate_item(child, old if old is not MISSING else None, schema)
                self.walk(child, item, index(path, i), MISSING if match is None else match)


def _pattern_matches(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


def node_errors(value: Any, schema: Schema, path: str) -> Iterator[FieldError]:
    """OpenAPI value validation of one node (not its children), with kube-openapi's messages."""
    if schema.get("x-kubernetes-int-or-string"):
        if not (is_integer(value) or isinstance(value, str)):
            yield FieldError(
                path,
                f"{path} in body must be of type int-or-string: {json.dumps(json_type(value))}",
                "TypeInvalid",
                json_type(value),
                "schema",
            )
        return
    schema_type = schema.get("type")
    if schema_type and not type_matches(schema_type, value):
        if value is None and schema.get("nullable"):
            return
        actual = json_type(value)
        yield FieldError(
            path, f"{path} in body must be of type {schema_type}: {json.dumps(actual)}", "TypeInvalid", actual, "schema"
        )
        return
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(v) for v in schema["enum"])
        yield FieldError(path, f"supported values: {supported}", "NotSupported", value, "schema")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield FieldError(path, f"may not be more than {schema['maxLength']} bytes", "TooLong", value, "schema")
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield FieldError(
                path,
                f"{path} in body should be at least {schema['minLength']} chars long",
                value=value,
                origin="schema",
            )
        if "pattern" in schema and not _pattern_matches(schema["pattern"], value):
            yield FieldError(path, f"{path} in body should match '{schema['pattern']}'", value=value, origin="schema")
    if is_integer(value) or (isinstance(value, float) and schema_type == "number"):
        if "minimum" in schema and value < schema["minimum"]:
            yield FieldError(
                path,
                f"{path} in body should be greater than or equal to {_go_number(schema['minimum'])}",
                value=value,
                origin="schema",
            )
        if "maximum" in schema and value > schema["maximum"]:
            yield FieldError(
                path,
                f"{path} in body should be less than or equal to {_go_number(schema['maximum'])}",
                value=value,
                origin="schema",
            )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            yield FieldError(path, f"must have at most {schema['maxItems']} items", "TooMany", len(value), "schema")
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield FieldError(
                path,
                f"{path} in body should have at least {schema['minItems']} items",
                value=len(value),
                origin="schema",
            )
    if isinstance(value, dict):
        for name in schema.get("required") or []:
            if name not in value:
                yield FieldError(join(path, name), "", "Required", origin="schema")


def list_type_errors(value: Any, schema: Schema, path: str) -> Iterator[FieldError]:
    """x-kubernetes-list-type map/set: duplicate keys or elements, each reported once (at its first repeat),
    as apiextensions' listtype validation does."""
    if not isinstance(value, list):
        return
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("set", "map"):
        return
    keys = list_map_keys(schema) or []
    seen: set[str] = set()
    reported: set[str] = set()
    for i, element in enumerate(value):
        if list_type == "map":
            if not isinstance(element, dict):
                continue
            ident = json.dumps([element.get(k) for k in keys])
            shown: Any = {k: element[k] for k in keys if k in element}
        else:
            ident = json.dumps(element, sort_keys=True)
            shown = element
        if ident not in seen:
            seen.add(ident)
        elif ident not in reported:
            reported.add(ident)
            yield FieldError(index(path, i), "", "Duplicate", shown, "schema")


def validate_values(obj: Any, schema: Schema, old: Any = MISSING) -> tuple[list[FieldError], list[FieldError]]:
    """OpenAPI value errors and list-type (duplicate) errors of a whole object, separately because the API
    server reports them at different points; on update, unchanged values are ratcheted."""
    values: list[FieldError] = []
    duplicates: list[FieldError] = []

    def visit(value: Any, node: Schema, path: str, old_value: Any) -> None:
        if old_value is not MISSING and old_value == value:
            return  # validation ratcheting: an unchanged value keeps passing
        values.extend(node_errors(value, node, path))
        duplicates.extend(list_type_errors(value, node, path))

    Walker(visit, map_child=join).walk(obj, schema, "", old)
    return values, duplicates
