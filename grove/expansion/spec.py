"""Loading a PodCliqueSet for expansion: parse, apply Grove's webhook defaults, validate.

This is the one seam to the API engineer's `grove.api.defaults.apply_defaults` and
`grove.validation.rules.validate_podcliqueset`; until they exist a minimal local version of each is used, so
the operator and `grove render` work either way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from grove.api import PodCliqueSet
from grove.api.podcliqueset import PodCliqueScalingGroupConfig, PodCliqueTemplateSpec

try:  # pragma: no cover - depends on what has landed
    from grove.api.defaults import apply_defaults as _api_apply_defaults
except ImportError:  # pragma: no cover
    _api_apply_defaults = None  # type: ignore[assignment, unused-ignore]

try:  # pragma: no cover
    from grove.validation.rules import validate_podcliqueset as _api_validate
except ImportError:  # pragma: no cover
    _api_validate = None  # type: ignore[assignment, unused-ignore]


@dataclass(frozen=True)
class SpecError:
    """A rule the PodCliqueSet breaks: the field path and what is wrong with it."""

    field: str
    message: str


def _local_defaults(pcs: PodCliqueSet) -> PodCliqueSet:
    """Grove's defaulting webhook (grove-api.md §1.9), for what expansion reads."""
    template = pcs.spec.template
    for clique in template.cliques:
        spec = clique.spec
        if spec.replicas == 0:
            spec.replicas = 1
        if spec.min_available is None:
            spec.min_available = spec.replicas
        pod_spec = spec.pod_spec
        pod_spec.setdefault("restartPolicy", "Always")
        pod_spec.setdefault("terminationGracePeriodSeconds", 30)
        if spec.auto_scaling_config is not None and spec.auto_scaling_config.min_replicas is None:
            spec.auto_scaling_config.min_replicas = spec.replicas
    for group in template.pod_clique_scaling_groups or []:
        if group.scale_config is not None and group.scale_config.min_replicas is None:
            group.scale_config.min_replicas = group.replicas
    if template.termination_delay is None:
        template.termination_delay = "4h"
    if template.headless_service_config is None:
        from grove.api import HeadlessServiceConfig

        template.headless_service_config = HeadlessServiceConfig(publish_not_ready_addresses=True)
    return pcs


def load(obj: dict[str, Any] | PodCliqueSet) -> PodCliqueSet:
    """A defaulted PodCliqueSet model from JSON (the input is never mutated)."""
    pcs = (
        obj.model_copy(deep=True)
        if isinstance(obj, PodCliqueSet)
        else PodCliqueSet.model_validate(_without_status(obj))
    )
    if _api_apply_defaults is not None:
        result = _api_apply_defaults(pcs)
        pcs = result if isinstance(result, PodCliqueSet) else pcs
    return _local_defaults(pcs)  # idempotent: fills only what is still unset


def _without_status(obj: dict[str, Any]) -> dict[str, Any]:
    """The PCS JSON minus status and server-managed metadata the model does not need."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return copy.deepcopy(out)


def validate(obj: dict[str, Any]) -> list[SpecError]:
    """Rules the CRD's CEL cannot express. Parsing errors are reported as errors too, never raised."""
    try:
        pcs = load(obj)
    except Exception as error:  # pydantic ValidationError and anything else: report, never crash
        return [SpecError("spec", _short(str(error)))]
    if _api_validate is not None:
        try:
            return [SpecError(e.field, e.message) for e in _api_validate(obj)]
        except Exception as error:  # a validator bug must not stop the operator
            return [SpecError("spec", f"validation failed: {_short(str(error))}")]
    return _local_validate(pcs)


def _short(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _local_validate(pcs: PodCliqueSet) -> list[SpecError]:
    """Minimal local rules (Grove's validating webhook, §1.9) until grove.validation lands."""
    errors: list[SpecError] = []
    template = pcs.spec.template
    name = pcs.metadata.name or ""
    names = [c.name for c in template.cliques]
    if len(set(names)) != len(names):
        errors.append(SpecError("spec.template.cliques", "clique names must be unique"))
    grouped: dict[str, str] = {}
    for gi, group in enumerate(template.pod_clique_scaling_groups or []):
        for member in group.clique_names:
            if member not in names:
                errors.append(
                    SpecError(f"spec.template.podCliqueScalingGroups[{gi}].cliqueNames", f"unknown clique {member!r}")
                )
            elif member in grouped:
                errors.append(
                    SpecError(
                        f"spec.template.podCliqueScalingGroups[{gi}].cliqueNames",
                        f"clique {member!r} is already in scaling group {grouped[member]!r}",
                    )
                )
            else:
                grouped[member] = group.name
        if group.min_available > group.replicas:
            errors.append(SpecError(f"spec.template.podCliqueScalingGroups[{gi}].minAvailable", "must be <= replicas"))
    by_name = {c.name: c for c in template.cliques}
    for ci, clique in enumerate(template.cliques):
        group_name = grouped.get(clique.name)
        budget = len(name) + len(clique.name) + (len(group_name) if group_name else 0)
        if budget > 45:  # Grove #660: pod names must fit in 63 characters
            errors.append(
                SpecError(
                    f"spec.template.cliques[{ci}].name",
                    f"name budget exceeded: PodCliqueSet, scaling group and clique names add up to {budget} > 45",
                )
            )
        spec = clique.spec
        if spec.min_available is not None and spec.min_available > spec.replicas:
            errors.append(SpecError(f"spec.template.cliques[{ci}].spec.minAvailable", "must be <= replicas"))
        if template.clique_startup_type == "CliqueStartupTypeExplicit":
            for parent in spec.starts_after or []:
                if parent == clique.name:
                    errors.append(
                        SpecError(f"spec.template.cliques[{ci}].spec.startsAfter", "must not refer to itself")
                    )
                elif parent not in by_name:
                    errors.append(
                        SpecError(f"spec.template.cliques[{ci}].spec.startsAfter", f"unknown clique {parent!r}")
                    )
    if template.clique_startup_type == "CliqueStartupTypeExplicit" and _has_cycle(template.cliques):
        errors.append(SpecError("spec.template.cliques", "startsAfter dependencies form a cycle"))
    return errors


def _has_cycle(cliques: list[PodCliqueTemplateSpec]) -> bool:
    graph = {c.name: [p for p in (c.spec.starts_after or []) if p != c.name] for c in cliques}
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        state[node] = 1
        for parent in graph.get(node, []):
            if parent not in graph:
                continue
            if state.get(parent) == 1 or (state.get(parent) is None and visit(parent)):
                return True
        state[node] = 2
        return False

    return any(state.get(n) is None and visit(n) for n in graph)


def clique_by_name(pcs: PodCliqueSet, name: str) -> PodCliqueTemplateSpec:
    for clique in pcs.spec.template.cliques:
        if clique.name == name:
            return clique
    raise KeyError(name)


def group_of(pcs: PodCliqueSet, clique: str) -> PodCliqueScalingGroupConfig | None:
    """The scaling group a clique belongs to, if any."""
    for group in pcs.spec.template.pod_clique_scaling_groups or []:
        if clique in group.clique_names:
            return group
    return None


def standalone_cliques(pcs: PodCliqueSet) -> list[PodCliqueTemplateSpec]:
    """Cliques outside every scaling group, in template order."""
    grouped = {n for g in pcs.spec.template.pod_clique_scaling_groups or [] for n in g.clique_names}
    return [c for c in pcs.spec.template.cliques if c.name not in grouped]


def group_members(pcs: PodCliqueSet, group: PodCliqueScalingGroupConfig) -> list[PodCliqueTemplateSpec]:
    """Member cliques of a group, in template (not cliqueNames) order, as Grove iterates them."""
    return [c for c in pcs.spec.template.cliques if c.name in group.clique_names]


def min_available(clique: PodCliqueTemplateSpec) -> int:
    return clique.spec.effective_min_available()
