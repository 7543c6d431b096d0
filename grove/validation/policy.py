"""The PodCliqueSet ValidatingAdmissionPolicy: Grove's rules that CRD validation rules cannot evaluate.

CRD `x-kubernetes-validations` (grove.validation.celrules) see only the schema node they sit on (root rules see
no annotations) and are cost-checked statically, so three kinds of Grove rules live here instead, evaluated by
the API server's admission chain (admissionregistration.k8s.io/v1, no webhook):

- every `grove.io/mnnvl-group` rule: the value is "none" or a DNS-1123 label on the PodCliqueSet, a clique or
  a scaling group, a clique that names a group itself uses NVIDIA GPUs, and the annotation cannot be added,
  removed or changed on update (metadata annotations and unbounded
  annotation values are out of CRD-rule reach);
- label and annotation keys of clique templates and scaling groups are Kubernetes qualified names (map keys
  are unbounded strings: a regex over them is over the static CRD cost budget);
- startsAfter cycles under CliqueStartupTypeExplicit (reachability by repeated squaring of the dependency
  matrix, needs the policy's variables).

This catalog is the single source: `grove crds` writes it to deploy/admission/, the test harness installs it,
and `grove validate` evaluates the same expressions with cel-python (`policy_errors`). The API server reports
only the first failing validation, as one cause without a field: "ValidatingAdmissionPolicy '<p>' with binding
'<b>' denied request: <message>"; each message therefore starts with the exact field path.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import celpy

from grove.api.constants import ANNOTATION_MNNVL_GROUP, GROUP, KIND_PODCLIQUESET, VERSION
from grove.validation.errors import FieldError

POLICY_NAME = "grove-podcliqueset-rules"
BINDING_NAME = "grove-podcliqueset-rules"
DENIED = "ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {message}"
MAX_CLIQUES = 64
MAX_GROUPS = 32
SQUARINGS = 6  # paths of up to 2**6 = 64 edges: every cycle among at most 64 cliques

OBJ = "object.spec.template"
OLD = "oldObject.spec.template"
K = ANNOTATION_MNNVL_GROUP
DNS1123_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# metav1 qualified name: optional DNS-subdomain prefix and '/', then a name of at most 63 characters. The prefix
# length (253) is bounded by the total size only: the common CEL subset has no split.
NAME_PART = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LOWER_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
ANY_LABEL = "[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
LABEL_KEY = f"^({LOWER_LABEL}(\\\\.{LOWER_LABEL})*/)?{NAME_PART}$"
# Annotation keys are checked lowercased (apimachinery ValidateAnnotations): the prefix may use capitals.
ANNOTATION_KEY = f"^({ANY_LABEL}(\\\\.{ANY_LABEL})*/)?{NAME_PART}$"
MAX_KEY = 253 + 1 + 63
MNNVL_MESSAGE = "must be \"none\" or a DNS-1123 label (lowercase alphanumerics and '-', at most 63)"


@dataclass(frozen=True)
class Validation:
    """One entry of the policy's `validations` (the catalog name identifies it in tests and the corpus)."""

    name: str
    expression: str
    message_expression: str
    message: str

    def to_policy(self) -> dict[str, Any]:
        """The entry as written in the policy (reason Invalid: the server answers 422 like a CRD rule)."""
        return {
            "expression": self.expression,
            "messageExpression": self.message_expression,
            "message": self.message,
            "reason": "Invalid",
        }


def _indices(bound: int) -> str:
    return "[" + ", ".join(str(i) for i in range(bound)) + "]"


def _first(items: str, bound: int, bad: Callable[[str], str]) -> str:
    # two filters: cel-python does not absorb an out-of-range index behind a false `&&`
    return f"{_indices(bound)}.filter(i, i < size({items})).filter(i, {bad(f'{items}[i]')})[0]"


def _mnnvl(meta: str) -> str:
    """The mnnvl-group annotation of an object with `annotations` ('' when absent)."""
    return f"(has({meta}.annotations) && '{K}' in {meta}.annotations ? {meta}.annotations['{K}'] : '')"


def _mnnvl_ok(meta: str) -> str:
    value = f"{meta}.annotations['{K}']"
    return (
        f"(!has({meta}.annotations) || !('{K}' in {meta}.annotations) || {value} == 'none' || "
        f"(size({value}) <= 63 && {value}.matches('{DNS1123_LABEL}')))"
    )


GPU = "nvidia.com/gpu"


def _gpu_quantity(resources: str) -> str:
    """A non-zero nvidia.com/gpu in one resource list (quantities are int-or-string)."""
    return f"(has({resources}) && '{GPU}' in {resources} && string({resources}['{GPU}']) != '0')"


def _gpus_or_no_group(clique: str) -> str:
    """Grove: an explicit group on a PodClique without NVIDIA GPUs is refused (inherited groups skip it)."""
    containers = f"(has({clique}.spec.podSpec.initContainers) ? {clique}.spec.podSpec.initContainers : [])"
    uses = (
        f"{clique}.spec.podSpec.containers.exists(k, has(k.resources) && "
        f"({_gpu_quantity('k.resources.limits')} || {_gpu_quantity('k.resources.requests')})) || "
        f"{containers}.exists(k, has(k.resources) && "
        f"({_gpu_quantity('k.resources.limits')} || {_gpu_quantity('k.resources.requests')})) || "
        f"(has({clique}.spec.devices) && (has({clique}.spec.devices.gpu) || has({clique}.spec.devices.mig)))"
    )
    explicit = f"has({clique}.annotations) && '{K}' in {clique}.annotations && {clique}.annotations['{K}'] != 'none'"
    return f"(!({explicit}) || {uses})"


def _groups(root: str) -> str:
    return f"(has({root}.podCliqueScalingGroups) ? {root}.podCliqueScalingGroups : [])"


def _cel_string(text: str) -> str:
    """A CEL double-quoted string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _level(
    name: str, items: str, bound: int, path: str, ok: Callable[[str], str], suffix: str, text: str, guard: str
) -> Validation:
    """A rule over every element of a list, whose message names the first bad element (`message` has `[]`)."""
    index = _first(items, bound, lambda x: f"!{ok(x)}")
    return Validation(
        name,
        f"{guard}{items}.all(x, {ok('x')})",
        f"'{path}[' + string({index}) + ']{suffix}: ' + {_cel_string(text)}",
        f"{path}[]{suffix}: {text}",
    )


def _mnnvl_rules() -> list[Validation]:
    create = "oldObject != null || "
    value_text = f"{K} {MNNVL_MESSAGE}"
    rules = [
        Validation(
            "mnnvl-value/podcliqueset",
            create + _mnnvl_ok("object.metadata"),
            _cel_string(f"metadata.annotations[{K}]: {value_text}"),
            f"metadata.annotations[{K}]: {value_text}",
        )
    ]
    for items, bound, path, what in (
        (f"{OBJ}.cliques", MAX_CLIQUES, "spec.template.cliques", "clique"),
        (_groups(OBJ), MAX_GROUPS, "spec.template.podCliqueScalingGroups", "group"),
    ):
        rules.append(
            _level(f"mnnvl-value/{what}", items, bound, path, _mnnvl_ok, f".annotations[{K}]", value_text, create)
        )
    rules.append(
        _level(
            "mnnvl-needs-gpus/clique",
            f"{OBJ}.cliques",
            MAX_CLIQUES,
            "spec.template.cliques",
            _gpus_or_no_group,
            f".annotations[{K}]",
            f"a clique that sets {K} itself must use NVIDIA GPUs ({GPU} in a container's requests or limits, or "
            "devices.gpu/devices.mig)",
            create,
        )
    )
    immutable = f"{K} is immutable: it cannot be added, removed or changed"
    rules.append(
        Validation(
            "mnnvl-immutable/podcliqueset",
            f"oldObject == null || {_mnnvl('object.metadata')} == {_mnnvl('oldObject.metadata')}",
            _cel_string(f"metadata.annotations[{K}]: {immutable}"),
            f"metadata.annotations[{K}]: {immutable}",
        )
    )
    for new_items, old_items, bound, path, what in (
        (f"{OBJ}.cliques", f"{OLD}.cliques", MAX_CLIQUES, "spec.template.cliques", "clique"),
        (_groups(OBJ), _groups(OLD), MAX_GROUPS, "spec.template.podCliqueScalingGroups", "group"),
    ):

        def same(x: str, old_items: str = old_items) -> str:
            return (
                f"(!{old_items}.exists(o, o.name == {x}.name) || "
                f"{old_items}.exists(o, o.name == {x}.name && {_mnnvl('o')} == {_mnnvl(x)}))"
            )

        rules.append(
            _level(
                f"mnnvl-immutable/{what}",
                new_items,
                bound,
                path,
                same,
                f".annotations[{K}]",
                immutable,
                "oldObject == null || ",
            )
        )
    return rules


def _key_rules() -> list[Validation]:
    """Clique and scaling-group label/annotation keys are qualified names (checked when the template changes)."""
    changed = f"(oldObject != null && {OBJ} == {OLD}) || "
    rules = []
    for items, bound, path, what in (
        (f"{OBJ}.cliques", MAX_CLIQUES, "spec.template.cliques", "clique"),
        (_groups(OBJ), MAX_GROUPS, "spec.template.podCliqueScalingGroups", "group"),
    ):
        for field, pattern in (("labels", LABEL_KEY), ("annotations", ANNOTATION_KEY)):
            if what == "group" and field == "labels":
                continue  # scaling groups have annotations only

            def ok(x: str, field: str = field, pattern: str = pattern) -> str:
                return f"(!has({x}.{field}) || {x}.{field}.all(k, size(k) <= {MAX_KEY} && k.matches('{pattern}')))"

            text = (
                f"{field} keys must be qualified names: an optional DNS subdomain prefix and '/', then at most 63 "
                "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
            )
            rules.append(_level(f"{field}-keys/{what}", items, bound, path, ok, f".{field}", text, changed))
    return rules


def _cycle_variables() -> list[tuple[str, str]]:
    cliques = "variables.cliques"
    idx = "variables.idx"
    edges = (
        f"{idx}.map(i, {idx}.map(j, i != j && has({cliques}[i].spec.startsAfter) && "
        f"{cliques}[j].name in {cliques}[i].spec.startsAfter))"
    )
    out = [
        ("cliques", f"{OBJ}.cliques"),
        ("idx", f"{_indices(MAX_CLIQUES)}.filter(i, i < size(variables.cliques))"),
        ("reach0", edges),
    ]
    for step in range(1, SQUARINGS + 1):
        prev = f"variables.reach{step - 1}"
        out.append(
            (
                f"reach{step}",
                f"{idx}.map(i, {idx}.map(j, {prev}[i][j] || {idx}.exists(k, {prev}[i][k] && {prev}[k][j])))",
            )
        )
    out.append(("cyclic", f"{idx}.filter(i, variables.reach{SQUARINGS}[i][i])"))
    return out


def _cycle_rule() -> Validation:
    explicit = f"{OBJ}.cliqueStartupType == 'CliqueStartupTypeExplicit'"
    first = "variables.cyclic[0]"
    return Validation(
        "starts-after-acyclic",
        f"oldObject != null || !({explicit}) || size(variables.cyclic) == 0",
        f"'spec.template.cliques[' + string({first}) + '].spec.startsAfter: startsAfter dependencies must not form "
        f"a cycle (clique \"' + variables.cliques[{first}].name + '\" depends on itself)'",
        "spec.template.cliques[].spec.startsAfter: startsAfter dependencies must not form a cycle",
    )


VARIABLES: tuple[tuple[str, str], ...] = tuple(_cycle_variables())
VALIDATIONS: tuple[Validation, ...] = (*_mnnvl_rules(), *_key_rules(), _cycle_rule())


def build_policy() -> list[dict[str, Any]]:
    """The ValidatingAdmissionPolicy and its binding (Deny), for PodCliqueSet create and update.

    Status updates are a subresource and not matched; metadata-only updates pass because every rule either
    runs on create only, compares with the old object, or skips an unchanged template.
    """
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": {"app.kubernetes.io/part-of": "grove-py"}},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": [VERSION],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["podcliquesets"],
                    }
                ]
            },
            "variables": [{"name": name, "expression": expression} for name, expression in VARIABLES],
            "validations": [validation.to_policy() for validation in VALIDATIONS],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": BINDING_NAME, "labels": {"app.kubernetes.io/part-of": "grove-py"}},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }
    return [policy, binding]


_ENV = celpy.Environment()


@lru_cache(maxsize=256)
def _program(expression: str) -> Any:
    return _ENV.program(_ENV.compile(expression))


def _variables(activation: dict[str, Any]) -> Mapping[str, Any]:
    """The policy's variables, each evaluated once, in order (later ones read earlier ones)."""
    values: dict[str, Any] = {}
    for name, expression in VARIABLES:
        scope = {**activation, "variables": celpy.celtypes.MapType(values)}
        values[celpy.celtypes.StringType(name)] = _program(expression).evaluate(scope)
    return values


def policy_errors(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[FieldError]:
    """The policy's verdict on creating `obj` (or updating `old` to it): the first failing validation, as the API
    server reports it, or nothing. `obj`/`old` are the objects after CRD defaulting."""
    if obj.get("kind") != KIND_PODCLIQUESET:
        return []
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
    }
    variables: Mapping[str, Any] | None = None
    for validation in VALIDATIONS:
        scope = dict(activation)
        if "variables." in validation.expression:
            variables = _variables(activation) if variables is None else variables
            scope["variables"] = celpy.celtypes.MapType(variables)
        result = _program(validation.expression).evaluate(scope)
        if isinstance(result, celpy.CELEvalError):
            raise result
        if bool(result):
            continue
        message = _program(validation.message_expression).evaluate(scope)
        text = str(message) if isinstance(message, str) and message else validation.message
        denied = DENIED.format(policy=POLICY_NAME, binding=BINDING_NAME, message=text)
        return [FieldError("", denied, "Denied", origin="policy")]
    return []
