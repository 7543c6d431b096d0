"""Loading a PodCliqueSet for expansion: parse, apply Grove's webhook defaults, validate.

The one seam to `grove.api.defaults.apply_defaults` (Grove's defaulting webhook) and
`grove.validation.rules.validate_podcliqueset` (the rules the CRD's CEL cannot express).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from grove.api import PodCliqueSet
from grove.api.defaults import apply_defaults
from grove.api.podcliqueset import PodCliqueScalingGroupConfig, PodCliqueTemplateSpec
from grove.validation.rules import validate_podcliqueset


@dataclass(frozen=True)
class SpecError:
    """A rule the PodCliqueSet breaks: the field path and what is wrong with it."""

    field: str
    message: str


def load(obj: dict[str, Any] | PodCliqueSet) -> PodCliqueSet:
    """A defaulted PodCliqueSet model from JSON (the input is never mutated)."""
    pcs = (
        obj.model_copy(deep=True)
        if isinstance(obj, PodCliqueSet)
        else PodCliqueSet.model_validate(_without_status(obj))
    )
    return apply_defaults(pcs)


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
        load(obj)
    except Exception as error:  # pydantic ValidationError and anything else: report, never crash
        return [SpecError("spec", _short(str(error)))]
    try:
        return [SpecError(e.field, e.message) for e in validate_podcliqueset(obj)]
    except Exception as error:  # a validator bug must not stop the operator
        return [SpecError("spec", f"validation failed: {_short(str(error))}")]


def _short(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
