"""The operator's backstop: Grove's rules that need graph algorithms or annotations, as plain Python.

Admission enforces all of them too (the ValidatingAdmissionPolicy in `grove.validation.policy` and CRD rules
in `grove.validation.celrules`); the operator checks them again because objects stored before the CRDs or
the policy carried a rule, or created where the policy is not installed, reach it all the same:

- startsAfter cycles (Grove finds them with strongly connected components);
- the `grove.io/mnnvl-group` annotation values and their immutability;
- the 45-character name budget reported per contributing field, so the operator names the exact clique.

`validate_podcliqueset` takes raw JSON (what kopf hands the operator, or a parsed manifest): it must not
assume the schema already passed, so every access is defensive. The operator calls it before creating any
child object and reports the errors in the SpecValid condition; `grove validate` prints them after the
admission checks.
"""

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from grove.api.constants import ANNOTATION_MNNVL_GROUP, MAX_COMBINED_NAME_LENGTH
from grove.validation.errors import FieldError

EXPLICIT = "CliqueStartupTypeExplicit"
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MNNVL_OPT_OUT = "none"

MSG_CYCLE = "startsAfter dependencies must not form a cycle: {cycle}"
MSG_NAME_BUDGET = "combined length of {parts} must not exceed {limit} characters, got {total}"
MSG_MNNVL = "grove.io/mnnvl-group must be \"none\" or a DNS-1123 label (lowercase alphanumerics and '-', at most 63)"


def _as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _as_list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _clique_name(clique: Any) -> str:
    name = _as_dict(clique).get("name")
    return name if isinstance(name, str) else ""


def strongly_connected_components(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit for long chains); components in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for succ in edges:
                if succ not in graph:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(graph.get(succ, ()))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def check_starts_after_cycles(template: Mapping[str, Any]) -> list[FieldError]:
    """Cycles in the startsAfter graph (Explicit startup only), reported on every clique in a cycle."""
    if template.get("cliqueStartupType") != EXPLICIT:
        return []
    cliques = _as_list(template.get("cliques"))
    position = {_clique_name(c): i for i, c in enumerate(cliques) if _clique_name(c)}
    graph: dict[str, list[str]] = {}
    for clique in cliques:
        name = _clique_name(clique)
        if name:
            parents = _as_list(_as_dict(_as_dict(clique).get("spec")).get("startsAfter"))
            graph[name] = [p for p in parents if isinstance(p, str) and p != name]
    errors: list[FieldError] = []
    for component in strongly_connected_components(graph):
        if len(component) < 2:
            continue  # self references are a CEL rule; a single node without a self edge is no cycle
        members = sorted(component, key=position.__getitem__)
        cycle = " -> ".join([*members, members[0]])
        for name in members:
            errors.append(
                FieldError(
                    field=f"spec.template.cliques[{position[name]}].spec.startsAfter",
                    message=MSG_CYCLE.format(cycle=cycle),
                    value=list(graph[name]),
                )
            )
    return errors


def _pcs_name(pcs: Mapping[str, Any]) -> str | None:
    meta = _as_dict(pcs.get("metadata"))
    name = meta.get("name")
    if isinstance(name, str) and name:
        return name
    generate = meta.get("generateName")
    if isinstance(generate, str) and generate:
        return generate + "x" * 5  # the API server appends 5 random characters
    return None


def check_name_budget(pcs: Mapping[str, Any]) -> list[FieldError]:
    """Grove's 45-character budget (pod names must fit in 63), reported on each contributing field."""
    pcs_name = _pcs_name(pcs)
    if pcs_name is None:
        return []
    template = _as_dict(_as_dict(pcs.get("spec")).get("template"))
    cliques = _as_list(template.get("cliques"))
    clique_index = {_clique_name(c): i for i, c in enumerate(cliques)}
    errors: list[FieldError] = []
    members: set[str] = set()
    for g_index, group in enumerate(_as_list(template.get("podCliqueScalingGroups"))):
        group_name = _as_dict(group).get("name")
        if not isinstance(group_name, str):
            continue
        for n_index, clique in enumerate(_as_list(_as_dict(group).get("cliqueNames"))):
            if not isinstance(clique, str):
                continue
            members.add(clique)
            total = len(pcs_name) + len(group_name) + len(clique)
            if total <= MAX_COMBINED_NAME_LENGTH:
                continue
            message = MSG_NAME_BUDGET.format(
                parts=(
                    f"the PodCliqueSet name ({pcs_name}), scaling group name ({group_name}) and clique name ({clique})"
                ),
                limit=MAX_COMBINED_NAME_LENGTH,
                total=total,
            )
            errors.append(
                FieldError(f"spec.template.podCliqueScalingGroups[{g_index}].name", message, value=group_name)
            )
            errors.append(
                FieldError(
                    f"spec.template.podCliqueScalingGroups[{g_index}].cliqueNames[{n_index}]", message, value=clique
                )
            )
            if clique in clique_index:
                errors.append(FieldError(f"spec.template.cliques[{clique_index[clique]}].name", message, value=clique))
    for index, clique in enumerate(cliques):
        name = _clique_name(clique)
        if not name or name in members:
            continue
        total = len(pcs_name) + len(name)
        if total > MAX_COMBINED_NAME_LENGTH:
            message = MSG_NAME_BUDGET.format(
                parts=f"the PodCliqueSet name ({pcs_name}) and clique name ({name})",
                limit=MAX_COMBINED_NAME_LENGTH,
                total=total,
            )
            errors.append(FieldError(f"spec.template.cliques[{index}].name", message, value=name))
    if errors:
        errors.append(FieldError("metadata.name", errors[0].message, value=pcs_name))
    return errors


def _annotation_holders(pcs: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(field path, annotations) of the PodCliqueSet, each clique template and each scaling group."""
    yield "metadata.annotations", _as_dict(_as_dict(pcs.get("metadata")).get("annotations"))
    template = _as_dict(_as_dict(pcs.get("spec")).get("template"))
    for i, clique in enumerate(_as_list(template.get("cliques"))):
        yield f"spec.template.cliques[{i}].annotations", _as_dict(_as_dict(clique).get("annotations"))
    for i, group in enumerate(_as_list(template.get("podCliqueScalingGroups"))):
        yield f"spec.template.podCliqueScalingGroups[{i}].annotations", _as_dict(_as_dict(group).get("annotations"))


def check_mnnvl_annotation(pcs: Mapping[str, Any]) -> list[FieldError]:
    """`grove.io/mnnvl-group` is "none" or a DNS-1123 label, at every level.

    Not CEL: annotation values are unbounded strings, and `matches` on them for 64 cliques exceeds the cost
    budget (and root rules cannot read metadata.annotations at all).
    """
    errors = []
    for path, annotations in _annotation_holders(pcs):
        value = annotations.get(ANNOTATION_MNNVL_GROUP)
        if value is None or value == MNNVL_OPT_OUT:
            continue
        if isinstance(value, str) and len(value) <= 63 and DNS1123_LABEL.match(value):
            continue
        errors.append(FieldError(f"{path}[{ANNOTATION_MNNVL_GROUP}]", MSG_MNNVL, value=value))
    return errors


def validate_podcliqueset_update(old_json: Mapping[str, Any], new_json: Mapping[str, Any]) -> list[FieldError]:
    """The backstop's update rules: the `grove.io/mnnvl-group` annotation is immutable at every level.

    Levels are matched by name (cliques and scaling groups), as Grove's webhook does.
    """

    def by_level(pcs: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
        template = _as_dict(_as_dict(pcs.get("spec")).get("template"))
        levels: dict[str, tuple[str, Any]] = {}
        for path, annotations in _annotation_holders(pcs):
            if path.startswith("metadata"):
                level = "pcs"
            else:
                i = int(path.split("[")[1].split("]")[0])
                items = template.get("cliques") if ".cliques[" in path else template.get("podCliqueScalingGroups")
                level = f"{path.split('[')[0]}/{_clique_name(_as_list(items)[i])}"
            levels[level] = (f"{path}[{ANNOTATION_MNNVL_GROUP}]", annotations.get(ANNOTATION_MNNVL_GROUP))
        return levels

    old_levels = by_level(_as_dict(old_json))
    errors = []
    for level, (path, value) in by_level(_as_dict(new_json)).items():
        if level in old_levels and old_levels[level][1] != value:
            errors.append(FieldError(path, f"{ANNOTATION_MNNVL_GROUP} is immutable", value=value))
    return errors


def validate_podcliqueset(pcs_json: Mapping[str, Any]) -> list[FieldError]:
    """The backstop rules for one PodCliqueSet (JSON as stored or as written); empty means valid.

    These complement admission (schema + CEL), which the API server has already applied to any object the
    operator reads. Errors are in a stable order: cycles, name budget, annotations.
    """
    pcs = _as_dict(pcs_json)
    template = _as_dict(_as_dict(pcs.get("spec")).get("template"))
    return [
        *check_starts_after_cycles(template),
        *check_name_budget(pcs),
        *check_mnnvl_annotation(pcs),
    ]
