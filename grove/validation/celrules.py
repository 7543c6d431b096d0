"""Every CEL validation rule of the grove.io CRDs, in one place.

Grove validates PodCliqueSets in a webhook; grove-py has none, so its rules (grove-api.md §1.2, §1.9) are
`x-kubernetes-validations` the API server evaluates itself. This catalog is the single source: the CRD
generator (`grove.api.crdgen`) attaches each rule to the schema node named by `path`, and the offline
checker (`grove.validation.cel`) evaluates whatever rules the generated schema carries, so admission and
`grove validate` cannot drift apart.

Paths are schema locations: dotted property names, `[]` for list items (`spec.template.cliques[].spec`),
"" for the root (only root rules may read `self.metadata.name`). Messages start with the field they are
about, because the API server reports them on `fieldPath` (or the rule's node), not per list element.
Rules only use the CEL common subset (macros, `size`, `in`, `matches`), which cel-python implements, and
every list or string they iterate is bounded (`maxItems`/`maxLength`) to stay inside the CEL cost budget.
The `grove.io/mnnvl-group` annotation rules are Python-only (`grove.validation.rules`): annotation values are
unbounded strings, so `matches` and `==` on them exceed the budget when repeated for 64 cliques.
"""

from dataclasses import dataclass
from typing import Any

from grove.api.constants import MAX_COMBINED_NAME_LENGTH

PCS = "PodCliqueSet"
PCLQ = "PodClique"

FORBIDDEN = "FieldValueForbidden"
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"

T = "spec.template"
CLIQUE = "spec.template.cliques[]"
CLIQUE_SPEC = "spec.template.cliques[].spec"
GROUP = "spec.template.podCliqueScalingGroups[]"
EXPLICIT = "CliqueStartupTypeExplicit"


@dataclass(frozen=True)
class CelRule:
    """One `x-kubernetes-validations` entry and where it goes.

    `name` identifies the rule in tests and in the bad-input corpus; `kind` and `path` say which CRD and
    schema node carry it. A rule that mentions `oldSelf` is a transition rule (updates only).
    """

    name: str
    kind: str
    path: str
    rule: str
    message: str
    field_path: str | None = None
    reason: str | None = None
    optional_old_self: bool = False

    @property
    def is_transition(self) -> bool:
        """Whether the rule compares with the stored object (only evaluated on update)."""
        return "oldSelf" in self.rule

    def to_crd(self) -> dict[str, Any]:
        """The rule as it appears in the CRD schema."""
        out: dict[str, Any] = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        if self.reason:
            out["reason"] = self.reason
        if self.optional_old_self:
            out["optionalOldSelf"] = True
        return out


def _opt(expr: str, field: str, default: str = "''") -> str:
    """`expr.field` or a default when absent (cel-python has no optional types, so no `?.`)."""
    return f"(has({expr}.{field}) ? {expr}.{field} : {default})"


def _same_set(new: str, old: str) -> str:
    """Two lists hold the same elements (valid for list-type set/map, whose elements are unique).

    Not `==`: the API server compares set and map lists ignoring order, cel-python does not.
    """
    return f"size({new}) == size({old}) && {new}.all(x, {old}.exists(y, y == x))"


def _immutable_optional_list(obj: str, old: str, field: str) -> str:
    """An optional list field is unchanged: same presence, same elements."""
    return (
        f"has({obj}.{field}) == has({old}.{field}) && "
        f"(!has({obj}.{field}) || ({_same_set(f'{obj}.{field}', f'{old}.{field}')}))"
    )


def _scheduler(clique: str) -> str:
    name = f"{clique}.spec.podSpec.schedulerName"
    return f"(has({name}) && {name} != '' ? {name} : 'default-scheduler')"


PACK_DOMAIN_MESSAGE = "packDomain is deprecated and cannot be used on new workloads; use pack.required"
TOPOLOGY_PATHS = (f"{T}.topologyConstraint", f"{CLIQUE}.topologyConstraint", f"{GROUP}.topologyConstraint")
EFFECTIVE_REPLICAS = "(self.replicas == 0 ? 1 : self.replicas)"
EFFECTIVE_MIN_AVAILABLE = f"(has(self.minAvailable) ? self.minAvailable : {EFFECTIVE_REPLICAS})"
BUDGET = MAX_COMBINED_NAME_LENGTH


def _topology_rules() -> list[CelRule]:
    rules: list[CelRule] = []
    for path in TOPOLOGY_PATHS:
        level = path.split(".")[-2].rstrip("[]")
        rules += [
            CelRule(
                f"topology-pack-or-packdomain/{level}",
                PCS,
                path,
                "has(self.pack) || has(self.packDomain)",
                "topologyConstraint must specify pack or deprecated packDomain",
                field_path=".pack",
                reason=REQUIRED,
            ),
            CelRule(
                f"topology-not-both/{level}",
                PCS,
                path,
                "!(has(self.packDomain) && has(self.pack) && has(self.pack.required))",
                "must not set both pack.required and deprecated packDomain",
                field_path=".pack.required",
            ),
            CelRule(
                f"topology-pack-required-or-preferred/{level}",
                PCS,
                f"{path}.pack",
                "has(self.required) || has(self.preferred)",
                "pack must specify at least one of required or preferred",
                reason=REQUIRED,
            ),
        ]
    return rules


def _root_rules() -> list[CelRule]:
    name = "self.metadata.name"
    return [
        CelRule(
            "packdomain-deprecated/template",
            PCS,
            "",
            "oldSelf.hasValue() || !has(self.spec.template.topologyConstraint) || "
            "!has(self.spec.template.topologyConstraint.packDomain)",
            PACK_DOMAIN_MESSAGE,
            field_path=".spec.template.topologyConstraint.packDomain",
            reason=FORBIDDEN,
            optional_old_self=True,
        ),
        CelRule(
            "packdomain-deprecated/cliques",
            PCS,
            "",
            "oldSelf.hasValue() || !has(self.spec.template.cliques) || self.spec.template.cliques.all(c, "
            "!has(c.topologyConstraint) || !has(c.topologyConstraint.packDomain))",
            PACK_DOMAIN_MESSAGE,
            field_path=".spec.template.cliques",
            reason=FORBIDDEN,
            optional_old_self=True,
        ),
        CelRule(
            "packdomain-deprecated/groups",
            PCS,
            "",
            "oldSelf.hasValue() || !has(self.spec.template.podCliqueScalingGroups) || "
            "self.spec.template.podCliqueScalingGroups.all(g, "
            "!has(g.topologyConstraint) || !has(g.topologyConstraint.packDomain))",
            PACK_DOMAIN_MESSAGE,
            field_path=".spec.template.podCliqueScalingGroups",
            reason=FORBIDDEN,
            optional_old_self=True,
        ),
        CelRule(
            "name-budget/cliques",
            PCS,
            "",
            f"!has({name}) || self.spec.template.cliques.all(c, size({name}) + size(c.name) <= {BUDGET})",
            f"spec.template.cliques[].name: the PodCliqueSet name plus a clique name must not exceed {BUDGET} "
            "characters (pod names must fit in 63)",
            field_path=".spec.template.cliques",
        ),
        CelRule(
            "name-budget/groups",
            PCS,
            "",
            f"!has({name}) || !has(self.spec.template.podCliqueScalingGroups) || "
            "self.spec.template.podCliqueScalingGroups.all(g, g.cliqueNames.all(n, "
            f"size({name}) + size(g.name) + size(n) <= {BUDGET}))",
            "spec.template.podCliqueScalingGroups[].name: the PodCliqueSet name plus a scaling group name plus a "
            f"member clique name must not exceed {BUDGET} characters (pod names must fit in 63)",
            field_path=".spec.template.podCliqueScalingGroups",
        ),
    ]


def _template_rules() -> list[CelRule]:
    groups = "self.podCliqueScalingGroups"
    return [
        CelRule(
            "role-name-unique",
            PCS,
            T,
            "self.cliques.all(a, self.cliques.exists_one(b, b.spec.roleName == a.spec.roleName))",
            "spec.template.cliques[].spec.roleName must be unique across cliques",
            field_path=".cliques",
        ),
        CelRule(
            "starts-after-requires-explicit",
            PCS,
            T,
            f"self.cliqueStartupType == '{EXPLICIT}' || "
            "self.cliques.all(c, !has(c.spec.startsAfter) || size(c.spec.startsAfter) == 0)",
            f"spec.template.cliques[].spec.startsAfter may only be set when cliqueStartupType is {EXPLICIT}",
            field_path=".cliques",
            reason=FORBIDDEN,
        ),
        CelRule(
            "starts-after-exists",
            PCS,
            T,
            "self.cliques.all(c, !has(c.spec.startsAfter) || "
            "c.spec.startsAfter.all(p, self.cliques.exists(o, o.name == p)))",
            "spec.template.cliques[].spec.startsAfter must only name cliques of this PodCliqueSet",
            field_path=".cliques",
        ),
        CelRule(
            "same-scheduler",
            PCS,
            T,
            f"size(self.cliques) == 0 || self.cliques.all(c, {_scheduler('c')} == {_scheduler('self.cliques[0]')})",
            "spec.template.cliques[].spec.podSpec.schedulerName must be the same for all cliques",
            field_path=".cliques",
        ),
        CelRule(
            "group-members-exist",
            PCS,
            T,
            f"!has({groups}) || {groups}.all(g, g.cliqueNames.all(n, self.cliques.exists(c, c.name == n)))",
            "spec.template.podCliqueScalingGroups[].cliqueNames must only name cliques of this PodCliqueSet",
            field_path=".podCliqueScalingGroups",
        ),
        CelRule(
            "clique-in-one-group",
            PCS,
            T,
            f"!has({groups}) || self.cliques.all(c, size({groups}.filter(g, c.name in g.cliqueNames)) <= 1)",
            "spec.template.podCliqueScalingGroups[].cliqueNames: a clique may belong to at most one scaling group",
            field_path=".podCliqueScalingGroups",
        ),
        CelRule(
            "no-autoscaling-on-group-members",
            PCS,
            T,
            f"!has({groups}) || self.cliques.all(c, !has(c.spec.autoScalingConfig) || "
            f"!{groups}.exists(g, c.name in g.cliqueNames))",
            "spec.template.cliques[].spec.autoScalingConfig is not allowed on cliques that belong to a scaling "
            "group; use podCliqueScalingGroups[].scaleConfig",
            field_path=".cliques",
            reason=FORBIDDEN,
        ),
        CelRule(
            "sharing-namespace-internal",
            PCS,
            T,
            "!has(self.resourceSharing) || !has(self.resourceClaimTemplates) || self.resourceSharing.all(s, "
            "!has(s.namespace) || s.namespace == '' || !self.resourceClaimTemplates.exists(t, t.name == s.name))",
            "spec.template.resourceSharing[].namespace must be empty when name refers to one of "
            "spec.template.resourceClaimTemplates",
            field_path=".resourceSharing",
        ),
        CelRule(
            "sharing-filter-cliques-exist",
            PCS,
            T,
            "!has(self.resourceSharing) || self.resourceSharing.all(s, !has(s.filter) || "
            "!has(s.filter.childCliqueNames) || s.filter.childCliqueNames.all(n, self.cliques.exists(c, c.name == n)))",
            "spec.template.resourceSharing[].filter.childCliqueNames must only name cliques of this PodCliqueSet",
            field_path=".resourceSharing",
        ),
        CelRule(
            "sharing-filter-groups-exist",
            PCS,
            T,
            "!has(self.resourceSharing) || self.resourceSharing.all(s, !has(s.filter) || "
            f"!has(s.filter.childScalingGroupNames) || s.filter.childScalingGroupNames.all(n, has({groups}) && "
            f"{groups}.exists(g, g.name == n)))",
            "spec.template.resourceSharing[].filter.childScalingGroupNames must only name scaling groups of this "
            "PodCliqueSet",
            field_path=".resourceSharing",
        ),
        CelRule(
            "termination-delay-positive",
            PCS,
            f"{T}.terminationDelay",
            "self.matches('[1-9]')",
            "spec.template.terminationDelay must be greater than 0",
        ),
        # Immutability (transition rules: evaluated on update only).
        CelRule(
            "clique-startup-type-immutable",
            PCS,
            f"{T}.cliqueStartupType",
            "self == oldSelf",
            "spec.template.cliqueStartupType is immutable",
        ),
        CelRule(
            "clique-set-immutable",
            PCS,
            T,
            "size(self.cliques) == size(oldSelf.cliques) && "
            "self.cliques.all(c, oldSelf.cliques.exists(o, o.name == c.name))",
            "spec.template.cliques is immutable by name: cliques cannot be added, removed or renamed",
            field_path=".cliques",
        ),
        CelRule(
            "clique-order-immutable",
            PCS,
            T,
            "self.cliqueStartupType == 'CliqueStartupTypeAnyOrder' || "
            "self.cliques.map(c, c.name) == oldSelf.cliques.map(c, c.name)",
            "spec.template.cliques order is immutable when cliqueStartupType is InOrder or Explicit",
            field_path=".cliques",
        ),
        CelRule(
            "group-set-immutable",
            PCS,
            T,
            f"has({groups}) == has(oldSelf.podCliqueScalingGroups) && (!has({groups}) || "
            f"(size({groups}) == size(oldSelf.podCliqueScalingGroups) && "
            f"{groups}.all(g, oldSelf.podCliqueScalingGroups.exists(o, o.name == g.name))))",
            "spec.template.podCliqueScalingGroups is immutable by name: scaling groups cannot be added, removed or "
            "renamed",
            field_path=".podCliqueScalingGroups",
        ),
        CelRule(
            "resource-claim-templates-immutable",
            PCS,
            T,
            _immutable_optional_list("self", "oldSelf", "resourceClaimTemplates"),
            "spec.template.resourceClaimTemplates is immutable",
            field_path=".resourceClaimTemplates",
        ),
        CelRule(
            "resource-sharing-immutable/template",
            PCS,
            T,
            _immutable_optional_list("self", "oldSelf", "resourceSharing"),
            "spec.template.resourceSharing is immutable",
            field_path=".resourceSharing",
        ),
    ]


def _clique_rules() -> list[CelRule]:
    after = "self.spec.startsAfter"
    return [
        CelRule(
            "starts-after-not-self",
            PCS,
            CLIQUE,
            f"!has({after}) || !(self.name in {after})",
            "spec.startsAfter must not name the clique itself",
            field_path=".spec.startsAfter",
        ),
        CelRule(
            "starts-after-no-empty",
            PCS,
            CLIQUE,
            f"!has({after}) || {after}.all(p, size(p) > 0)",
            "spec.startsAfter must not contain empty clique names",
            field_path=".spec.startsAfter",
        ),
        CelRule(
            "clique-sharing-no-filter",
            PCS,
            CLIQUE,
            "!has(self.resourceSharing) || self.resourceSharing.all(s, !has(s.filter))",
            "resourceSharing[].filter is not allowed at clique level",
            field_path=".resourceSharing",
            reason=FORBIDDEN,
        ),
        CelRule(
            "role-name-immutable",
            PCS,
            CLIQUE,
            "self.spec.roleName == oldSelf.spec.roleName",
            "spec.roleName is immutable",
            field_path=".spec.roleName",
        ),
        CelRule(
            "min-available-immutable/clique",
            PCS,
            CLIQUE,
            "has(self.spec.minAvailable) == has(oldSelf.spec.minAvailable) && "
            "(!has(self.spec.minAvailable) || self.spec.minAvailable == oldSelf.spec.minAvailable)",
            "spec.minAvailable is immutable",
            field_path=".spec.minAvailable",
        ),
        CelRule(
            "starts-after-immutable",
            PCS,
            CLIQUE,
            _immutable_optional_list("self.spec", "oldSelf.spec", "startsAfter"),
            "spec.startsAfter is immutable",
            field_path=".spec.startsAfter",
        ),
        CelRule(
            "scheduler-name-immutable",
            PCS,
            CLIQUE,
            f"{_opt('self.spec.podSpec', 'schedulerName')} == {_opt('oldSelf.spec.podSpec', 'schedulerName')}",
            "spec.podSpec.schedulerName is immutable",
            field_path=".spec.podSpec.schedulerName",
        ),
        CelRule(
            "resource-sharing-immutable/clique",
            PCS,
            CLIQUE,
            _immutable_optional_list("self", "oldSelf", "resourceSharing"),
            "resourceSharing is immutable",
            field_path=".resourceSharing",
        ),
    ]


def _clique_spec_rules(kind: str, spec: str) -> list[CelRule]:
    """Rules of PodCliqueSpec, for the PCS template (`spec.template.cliques[].spec`) and the PodClique.

    The PodClique (generated, scaled through /scale by users and HPAs) only gets the rules about its static
    configuration: a replicas-dependent rule there would refuse `kubectl scale pclq --replicas=0`.
    """
    auto = "self.autoScalingConfig"
    static = [
        CelRule(
            f"autoscaling-max-ge-min/{kind}",
            kind,
            f"{spec}.autoScalingConfig",
            "!has(self.minReplicas) || self.maxReplicas >= self.minReplicas",
            "autoScalingConfig.maxReplicas must be greater than or equal to minReplicas",
            field_path=".maxReplicas",
        ),
        CelRule(
            f"devices-gpu-or-mig/{kind}",
            kind,
            f"{spec}.devices",
            "!(has(self.gpu) && has(self.mig))",
            "devices: set at most one of gpu (whole GPUs) or mig (MIG slices), not both",
            field_path=".mig",
            reason=FORBIDDEN,
        ),
    ]
    if kind != PCS:
        return static
    return [
        CelRule(
            f"min-available-le-replicas/{kind}",
            kind,
            spec,
            f"!has(self.minAvailable) || self.minAvailable <= {EFFECTIVE_REPLICAS}",
            "spec.minAvailable must not be greater than spec.replicas",
            field_path=".minAvailable",
        ),
        CelRule(
            f"autoscaling-max-ge-replicas/{kind}",
            kind,
            spec,
            f"!has({auto}) || {auto}.maxReplicas >= {EFFECTIVE_REPLICAS}",
            "spec.autoScalingConfig.maxReplicas must be greater than or equal to spec.replicas",
            field_path=".autoScalingConfig.maxReplicas",
        ),
        CelRule(
            f"autoscaling-min-ge-min-available/{kind}",
            kind,
            spec,
            f"!has({auto}) || !has({auto}.minReplicas) || {auto}.minReplicas >= {EFFECTIVE_MIN_AVAILABLE}",
            "spec.autoScalingConfig.minReplicas must be greater than or equal to spec.minAvailable",
            field_path=".autoScalingConfig.minReplicas",
        ),
        *static,
        CelRule(
            "pod-spec-no-topology-spread",
            PCS,
            f"{spec}.podSpec",
            "!has(self.topologySpreadConstraints) || size(self.topologySpreadConstraints) == 0",
            "podSpec.topologySpreadConstraints is not allowed: the operator places pods (gang scheduling "
            "and topologyConstraint)",
            field_path=".topologySpreadConstraints",
            reason=FORBIDDEN,
        ),
        CelRule(
            "pod-spec-no-node-name",
            PCS,
            f"{spec}.podSpec",
            "!has(self.nodeName) || self.nodeName == ''",
            "podSpec.nodeName is not allowed: pods of a clique are placed by the scheduler",
            field_path=".nodeName",
            reason=FORBIDDEN,
        ),
    ]


def _group_rules() -> list[CelRule]:
    scale = "self.scaleConfig"
    return [
        CelRule(
            "group-min-available-le-replicas",
            PCS,
            GROUP,
            "self.minAvailable <= self.replicas",
            "minAvailable must not be greater than replicas",
            field_path=".minAvailable",
        ),
        CelRule(
            "group-scale-min-ge-min-available",
            PCS,
            GROUP,
            f"!has({scale}) || !has({scale}.minReplicas) || {scale}.minReplicas >= self.minAvailable",
            "scaleConfig.minReplicas must be greater than or equal to minAvailable",
            field_path=".scaleConfig.minReplicas",
        ),
        CelRule(
            "group-scale-max-ge-replicas",
            PCS,
            GROUP,
            f"!has({scale}) || {scale}.maxReplicas >= self.replicas",
            "scaleConfig.maxReplicas must be greater than or equal to replicas",
            field_path=".scaleConfig.maxReplicas",
        ),
        CelRule(
            "group-scale-max-ge-min",
            PCS,
            f"{GROUP}.scaleConfig",
            "!has(self.minReplicas) || self.maxReplicas >= self.minReplicas",
            "scaleConfig.maxReplicas must be greater than or equal to minReplicas",
            field_path=".maxReplicas",
        ),
        CelRule(
            "group-sharing-filter",
            PCS,
            GROUP,
            "!has(self.resourceSharing) || self.resourceSharing.all(s, !has(s.filter) || "
            "(!has(s.filter.childScalingGroupNames) && has(s.filter.childCliqueNames) && "
            "size(s.filter.childCliqueNames) > 0 && s.filter.childCliqueNames.all(n, n in self.cliqueNames)))",
            "resourceSharing[].filter must list childCliqueNames, all members of this scaling group "
            "(childScalingGroupNames is not allowed here)",
            field_path=".resourceSharing",
        ),
        CelRule(
            "group-clique-names-immutable",
            PCS,
            GROUP,
            _same_set("self.cliqueNames", "oldSelf.cliqueNames"),
            "cliqueNames is immutable",
            field_path=".cliqueNames",
        ),
        CelRule(
            "group-min-available-immutable",
            PCS,
            GROUP,
            "self.minAvailable == oldSelf.minAvailable",
            "minAvailable is immutable",
            field_path=".minAvailable",
        ),
        CelRule(
            "resource-sharing-immutable/group",
            PCS,
            GROUP,
            _immutable_optional_list("self", "oldSelf", "resourceSharing"),
            "resourceSharing is immutable",
            field_path=".resourceSharing",
        ),
    ]


def _claim_template_rules() -> list[CelRule]:
    return [
        CelRule(
            "claim-template-requests",
            PCS,
            f"{T}.resourceClaimTemplates[]",
            "has(self.templateSpec.spec) && has(self.templateSpec.spec.devices) && "
            "has(self.templateSpec.spec.devices.requests) && "
            "size(self.templateSpec.spec.devices.requests) > 0",
            "templateSpec.spec.devices.requests must not be empty",
            field_path=".templateSpec.spec.devices.requests",
            reason=REQUIRED,
        ),
    ]


COMPUTE_DOMAIN_RULES = (
    CelRule(
        "compute-domain-spec-immutable",
        "ComputeDomain",
        "spec",
        "self == oldSelf",
        "A computeDomain.spec is immutable",
    ),
)

RULES: tuple[CelRule, ...] = (
    *_root_rules(),
    *_template_rules(),
    *_topology_rules(),
    *_clique_rules(),
    *_clique_spec_rules(PCS, CLIQUE_SPEC),
    *_clique_spec_rules(PCLQ, "spec"),
    *_group_rules(),
    *_claim_template_rules(),
    *COMPUTE_DOMAIN_RULES,
)


def rules_for(kind: str) -> list[CelRule]:
    """The rules of one kind's CRD, in catalog order."""
    return [rule for rule in RULES if rule.kind == kind]


def rule_by_name(name: str) -> CelRule:
    """Look a rule up by its catalog name."""
    for rule in RULES:
        if rule.name == name:
            return rule
    raise KeyError(name)
