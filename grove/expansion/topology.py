"""Topology constraints of a PodCliqueSet in node-label keys (issue #9, grove-api.md §2.12).

Users name domains (`pack.required: rack`); the scheduler needs node-label keys. The ClusterTopologyBinding
named by `topologyName` (inherited from the nearest parent that sets one) maps each domain to its key.
`translate` does that for the PCS, every scaling group and every clique, and reports each problem with the field
it comes from: a PodCliqueSet with a constraint is refused (SpecValid=False) when its binding does not exist or
lacks a domain. The static rules (same topologyName everywhere, a child narrower than its parent, immutability)
are the validator's (grove.validation)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grove.api import PodCliqueSet, TopologyConstraint
from grove.expansion.spec import SpecError


@dataclass(frozen=True)
class Pack:
    """One level's constraint as node-label keys."""

    required: str | None = None
    preferred: str | None = None

    def to_json(self) -> dict[str, dict[str, str]] | None:
        """The PodGang `topologyConstraint` JSON (None when neither key is set)."""
        keys = {k: v for k, v in (("required", self.required), ("preferred", self.preferred)) if v}
        return {"packConstraint": keys} if keys else None


@dataclass(frozen=True)
class TopologyKeys:
    """Every constraint of one PodCliqueSet, translated."""

    pcs: Pack = field(default_factory=Pack)
    groups: dict[str, Pack] = field(default_factory=dict)
    cliques: dict[str, Pack] = field(default_factory=dict)


NO_TOPOLOGY = TopologyKeys()

_T = "spec.template"


def _constraints(pcs: PodCliqueSet) -> list[tuple[str, TopologyConstraint]]:
    """(field path, constraint) of every level that has one, PCS first."""
    t = pcs.spec.template
    out: list[tuple[str, TopologyConstraint]] = []
    if t.topology_constraint is not None:
        out.append((f"{_T}.topologyConstraint", t.topology_constraint))
    for i, group in enumerate(t.pod_clique_scaling_groups or []):
        if group.topology_constraint is not None:
            out.append((f"{_T}.podCliqueScalingGroups[{i}].topologyConstraint", group.topology_constraint))
    for i, clique in enumerate(t.cliques):
        if clique.topology_constraint is not None:
            out.append((f"{_T}.cliques[{i}].topologyConstraint", clique.topology_constraint))
    return out


def uses_topology(pcs: PodCliqueSet) -> bool:
    return bool(_constraints(pcs))


def topology_name(pcs: PodCliqueSet) -> str | None:
    """The ClusterTopologyBinding the PodCliqueSet refers to: the PCS's own, else the first a child names."""
    for _, constraint in _constraints(pcs):
        if constraint.topology_name:
            return constraint.topology_name
    return None


def _required(constraint: TopologyConstraint) -> str | None:
    pack = constraint.pack
    return (pack.required if pack else None) or constraint.pack_domain


def _pack(
    path: str, constraint: TopologyConstraint | None, keys: dict[str, str], name: str, errors: list[SpecError]
) -> Pack:
    if constraint is None:
        return Pack()
    found: dict[str, str | None] = {}
    pack = constraint.pack
    for which, domain in (("required", _required(constraint)), ("preferred", pack.preferred if pack else None)):
        if domain and domain not in keys:
            legacy = which == "required" and not (pack and pack.required)
            sub = "packDomain" if legacy else f"pack.{which}"
            errors.append(
                SpecError(
                    f"{path}.{sub}",
                    f"domain {domain!r} is not a level of ClusterTopologyBinding {name!r} "
                    f"(levels: {', '.join(keys) or 'none'})",
                )
            )
        found[which] = keys.get(domain) if domain else None
    return Pack(required=found["required"], preferred=found["preferred"])


def translate(pcs: PodCliqueSet, levels: list[tuple[str, str]] | None) -> tuple[TopologyKeys, list[SpecError]]:
    """Translate every constraint with the binding's (domain, key) levels; `levels` is None when the binding
    does not exist. Without constraints: NO_TOPOLOGY and no errors, whatever the binding."""
    constraints = _constraints(pcs)
    if not constraints:
        return NO_TOPOLOGY, []
    name = topology_name(pcs)
    first_path = constraints[0][0]
    if name is None:
        return NO_TOPOLOGY, [SpecError(f"{first_path}.topologyName", "no topologyName set at this or any parent level")]
    if levels is None:
        return NO_TOPOLOGY, [
            SpecError(f"{first_path}.topologyName", f"ClusterTopologyBinding {name!r} not found (create it first)")
        ]
    keys = dict(levels)
    errors: list[SpecError] = []
    t = pcs.spec.template
    at = (keys, name, errors)
    out = TopologyKeys(
        pcs=_pack(f"{_T}.topologyConstraint", t.topology_constraint, keys, name, errors),
        groups={
            g.name: _pack(f"{_T}.podCliqueScalingGroups[{i}].topologyConstraint", g.topology_constraint, *at)
            for i, g in enumerate(t.pod_clique_scaling_groups or [])
        },
        cliques={
            c.name: _pack(f"{_T}.cliques[{i}].topologyConstraint", c.topology_constraint, keys, name, errors)
            for i, c in enumerate(t.cliques)
        },
    )
    return (NO_TOPOLOGY if errors else out), errors
