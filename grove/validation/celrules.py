"""Every CEL validation rule of the grove.io CRDs, in one place.

Grove validates PodCliqueSets in a webhook; grove-py has none, so its rules (grove-api.md §1.2, §1.9) are
`x-kubernetes-validations` the API server evaluates itself. This catalog is the single source: the CRD
generator (`grove.api.crdgen`) attaches each rule to the schema node named by `path`, and the offline
checker (`grove.validation.cel`) evaluates whatever rules the generated schema carries, so admission and
`grove validate` cannot drift apart.

Paths are schema locations: dotted property names, `[]` for list items (`spec.template.cliques[].spec`),
"" for the root (only root rules may read `self.metadata.name`). A rule about one element sits on the item
schema and the server names the element; a rule across elements sits on the list's parent and its
`messageExpression` names the element first (`spec.template.cliques[1].spec.roleName: ...`), see
`_element_rule`. Rules only use the CEL common subset (macros, `size`, `in`, `matches`), which cel-python
implements, and every list or string they iterate is bounded (`maxItems`/`maxLength`) to stay inside the
CRD cost budget; the API server checks that budget when the CRD is applied. What CRD rules cannot see or
afford (annotations, startsAfter cycles) is in the ValidatingAdmissionPolicy (`grove.validation.policy`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grove.api.constants import DEFAULT_SCHEDULER_NAME, MAX_COMBINED_NAME_LENGTH
from grove.api.schedulers import SERVED_SCHEDULER_NAMES

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
    message_expression: str | None = None

    @property
    def is_transition(self) -> bool:
        """Whether the rule compares with the stored object (only evaluated on update)."""
        return "oldSelf" in self.rule

    def to_crd(self) -> dict[str, Any]:
        """The rule as it appears in the CRD schema."""
        out: dict[str, Any] = {"rule": self.rule, "message": self.message}
        if self.message_expression:
            out["messageExpression"] = self.message_expression
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
    """An optional list field is unchanged; omitted and `[]` are the same value (Grove compares Go slices with
    `reflect.DeepEqual` after decoding, where both are empty)."""
    new_list, old_list = f"{obj}.{field}", f"{old}.{field}"
    new_empty = f"(!has({new_list}) || size({new_list}) == 0)"
    old_empty = f"(!has({old_list}) || size({old_list}) == 0)"
    return f"({new_empty} && {old_empty}) || (has({new_list}) && has({old_list}) && {_same_set(new_list, old_list)})"


def _scheduler(clique: str) -> str:
    name = f"{clique}.spec.podSpec.schedulerName"
    return f"(has({name}) && {name} != '' ? {name} : '{DEFAULT_SCHEDULER_NAME}')"


def _indices(bound: int) -> str:
    return "[" + ", ".join(str(i) for i in range(bound)) + "]"


def _index_names(bound: int) -> str:
    """Index digits as a literal list: the CRD cost estimator sizes `string(int)` as unbounded."""
    return "[" + ", ".join(f"'{i}'" for i in range(bound)) + "]"


def _first(items: str, bound: int, bad: Callable[[str], str]) -> str:
    """CEL: the index of the first element of `items` for which `bad(element)` holds (lists are bounded by
    maxItems, so a literal index list works where the common CEL subset has no range or indexOf)."""
    # two filters: cel-python does not absorb an out-of-range index behind a false `&&`
    return f"{_indices(bound)}.filter(i, i < size({items})).filter(i, {bad(f'{items}[i]')})[0]"


def _element_rule(
    name: str,
    path: str,
    rule: str,
    items: str,
    bound: int,
    bad: Callable[[str], str],
    list_path: str,
    suffix: str,
    text: str,
    *,
    field_path: str,
    reason: str | None = None,
) -> CelRule:
    """A rule across list elements, reported on the list, whose message names the exact element first, in
    Grove's field-path spelling (`spec.template.cliques[1].spec.roleName: ...`).

    fieldPath cannot carry a list index and item rules cannot see their siblings, so this is as close to
    Grove's per-element field as admission without a webhook gets. `message` is the same text with `[]`.
    """
    index = _first(items, bound, bad)
    return CelRule(
        name,
        PCS,
        path,
        rule,
        f"{list_path}[]{suffix}: {text}",
        field_path=field_path,
        reason=reason,
        message_expression=f"'{list_path}[' + {_index_names(bound)}[{index}] + ']{suffix}: ' + '{text}'",
    )


PACK_DOMAIN_MESSAGE = "packDomain is deprecated and cannot be used on new workloads; use pack.required"
TOPOLOGY_PATHS = (f"{T}.topologyConstraint", f"{CLIQUE}.topologyConstraint", f"{GROUP}.topologyConstraint")
EFFECTIVE_REPLICAS = "(self.replicas == 0 ? 1 : self.replicas)"
EFFECTIVE_MIN_AVAILABLE = f"(has(self.minAvailable) ? self.minAvailable : {EFFECTIVE_REPLICAS})"
BUDGET = MAX_COMBINED_NAME_LENGTH
CLIQUES = "self.cliques"
GROUPS = "self.podCliqueScalingGroups"
CLIQUES_PATH = "spec.template.cliques"
GROUPS_PATH = "spec.template.podCliqueScalingGroups"
MAX_CLIQUES = 64
MAX_GROUPS = 32
# Grove's topology domains, broadest first (grove-api.md §1.2 TopologyConstraint); a child's domain must be
# equal to or narrower than its parent's. Domains outside this list are ordered by a ClusterTopologyBinding's
# levels, which only the cluster knows (topology-aware scheduling checks them there).
TOPOLOGY_DOMAINS = ("region", "zone", "datacenter", "block", "rack", "host", "numa")
DOMAIN_RANK = "{" + ", ".join(f"'{d}': {i}" for i, d in enumerate(TOPOLOGY_DOMAINS)) + "}"


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
            # Grove: topology constraints are immutable; a missing topologyName may be added and packDomain
            # moved to pack.required with the same value (the two legacy repairs).
            CelRule(
                f"topology-immutable/{level}",
                PCS,
                path,
                "(!has(oldSelf.topologyName) || (has(self.topologyName) && self.topologyName == oldSelf.topologyName))"
                f" && {_required('self')} == {_required('oldSelf')} && {_preferred('self')} == {_preferred('oldSelf')}",
                "topologyConstraint is immutable (only a missing topologyName may be added, or packDomain moved to "
                "pack.required)",
            ),
        ]
    for holder, level, path in (
        (T, "template", ".topologyConstraint"),
        (CLIQUE, "clique", ".topologyConstraint"),
        (GROUP, "group", ".topologyConstraint"),
    ):
        rules.append(
            CelRule(
                f"topology-presence-immutable/{level}",
                PCS,
                holder,
                "has(self.topologyConstraint) == has(oldSelf.topologyConstraint)",
                "topologyConstraint is immutable: it cannot be added or removed after creation",
                field_path=path,
            )
        )
    return rules


def _required(tc: str) -> str:
    """The required domain of a TopologyConstraint (legacy packDomain counts as required), '' when none."""
    return f"(has({tc}.pack) && has({tc}.pack.required) ? {tc}.pack.required : {_opt(tc, 'packDomain')})"


def _preferred(tc: str) -> str:
    return f"(has({tc}.pack) && has({tc}.pack.preferred) ? {tc}.pack.preferred : '')"


def _domain(holder: str, which: Callable[[str], str]) -> str:
    """A holder's (template, clique or group) required or preferred domain, '' without a constraint."""
    return f"(has({holder}.topologyConstraint) ? {which(holder + '.topologyConstraint')} : '')"


def _not_broader(child: str, parent: str) -> str:
    """Grove: a child's domain is equal to or narrower than its parent's (checked where both are known)."""
    rank = DOMAIN_RANK
    known = f"{child} in {rank} && {parent} in {rank}"
    return f"({child} == '' || {parent} == '' || !({known}) || {rank}[{child}] >= {rank}[{parent}])"


def _nested_ok(child: str, parent: str) -> str:
    return " && ".join(_not_broader(_domain(child, which), _domain(parent, which)) for which in (_required, _preferred))


def _topology_name(holder: str) -> str:
    tc = f"{holder}.topologyConstraint"
    return f"(has({tc}) && has({tc}.topologyName) ? {tc}.topologyName : '')"


def _topology_template_rules() -> list[CelRule]:
    narrow = "must be equal to or narrower than"

    def in_group_ok(c: str) -> str:
        # no `has(x) ? x : []`: the cost estimator loses the list bounds of a conditional
        return f"(!has({GROUPS}) || {GROUPS}.all(g, !({c}.name in g.cliqueNames) || {_nested_ok(c, 'g')}))"

    first = f"([{_topology_name('self')}] + {CLIQUES}.map(c, {_topology_name('c')})).filter(n, n != '')"
    same = (
        f"{first}.all(n, n == {first}[0]) && (!has({GROUPS}) || {GROUPS}.all(g, {_topology_name('g')} == '' || "
        f"size({first}) == 0 || {_topology_name('g')} == {first}[0]) && {GROUPS}.all(g, {_topology_name('g')} == '' || "
        f"{GROUPS}.all(h, {_topology_name('h')} == '' || {_topology_name('h')} == {_topology_name('g')})))"
    )
    return [
        _element_rule(
            "topology-group-within-template",
            T,
            f"!has({GROUPS}) || {GROUPS}.all(g, {_nested_ok('g', 'self')})",
            GROUPS,
            MAX_GROUPS,
            lambda g: f"!({_nested_ok(g, 'self')})",
            GROUPS_PATH,
            ".topologyConstraint",
            f"pack domains {narrow} those of spec.template.topologyConstraint",
            field_path=".podCliqueScalingGroups",
        ),
        _element_rule(
            "topology-clique-within-template",
            T,
            f"{CLIQUES}.all(c, {_nested_ok('c', 'self')})",
            CLIQUES,
            MAX_CLIQUES,
            lambda c: f"!({_nested_ok(c, 'self')})",
            CLIQUES_PATH,
            ".topologyConstraint",
            f"pack domains {narrow} those of spec.template.topologyConstraint",
            field_path=".cliques",
        ),
        _element_rule(
            "topology-clique-within-group",
            T,
            f"{CLIQUES}.all(c, {in_group_ok('c')})",
            CLIQUES,
            MAX_CLIQUES,
            lambda c: f"!({in_group_ok(c)})",
            CLIQUES_PATH,
            ".topologyConstraint",
            f"pack domains {narrow} those of its scaling group",
            field_path=".cliques",
        ),
        CelRule(
            "topology-one-name",
            PCS,
            T,
            same,
            "spec.template: every topologyConstraint.topologyName of a PodCliqueSet must be the same (one "
            "ClusterTopologyBinding per PodCliqueSet)",
        ),
    ]


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
        _element_rule(
            "name-budget/cliques",
            "",
            f"!has({name}) || self.spec.template.cliques.all(c, size({name}) + size(c.name) <= {BUDGET})",
            "self.spec.template.cliques",
            MAX_CLIQUES,
            lambda c: f"size({name}) + size({c}.name) > {BUDGET}",
            CLIQUES_PATH,
            ".name",
            f"the PodCliqueSet name plus the clique name must not exceed {BUDGET} characters (pod names must fit "
            "in 63)",
            field_path=".spec.template.cliques",
        ),
        _element_rule(
            "name-budget/groups",
            "",
            f"!has({name}) || !has(self.spec.template.podCliqueScalingGroups) || "
            "self.spec.template.podCliqueScalingGroups.all(g, g.cliqueNames.all(n, "
            f"size({name}) + size(g.name) + size(n) <= {BUDGET}))",
            "self.spec.template.podCliqueScalingGroups",
            MAX_GROUPS,
            lambda g: f"{g}.cliqueNames.exists(n, size({name}) + size({g}.name) + size(n) > {BUDGET})",
            GROUPS_PATH,
            ".name",
            "the PodCliqueSet name plus the scaling group name plus a member clique name must not exceed "
            f"{BUDGET} characters (pod names must fit in 63)",
            field_path=".spec.template.podCliqueScalingGroups",
        ),
    ]


def _clique_list_rule(
    name: str,
    ok: Callable[[str], str],
    suffix: str,
    text: str,
    *,
    explicit_only: bool = False,
    reason: str | None = None,
) -> CelRule:
    """A rule over every clique that needs the template (siblings, groups, templates, startup type)."""
    rule = f"{CLIQUES}.all(c, {ok('c')})"
    if explicit_only:
        rule = f"self.cliqueStartupType != '{EXPLICIT}' || {rule}"
    bad = lambda c: f"!({ok(c)})"  # noqa: E731
    return _element_rule(
        name, T, rule, CLIQUES, MAX_CLIQUES, bad, CLIQUES_PATH, suffix, text, field_path=".cliques", reason=reason
    )


def _group_list_rule(name: str, ok: Callable[[str], str], suffix: str, text: str, reason: str | None = None) -> CelRule:
    rule = f"!has({GROUPS}) || {GROUPS}.all(g, {ok('g')})"
    bad = lambda g: f"!({ok(g)})"  # noqa: E731
    return _element_rule(
        name,
        T,
        rule,
        GROUPS,
        MAX_GROUPS,
        bad,
        GROUPS_PATH,
        suffix,
        text,
        field_path=".podCliqueScalingGroups",
        reason=reason,
    )


def _internal_namespace_ok(holder: str) -> str:
    """Grove: a resourceSharing entry naming an internal template (spec.template.resourceClaimTemplates) has no
    namespace; internal templates take precedence over external ones with the same name."""
    return (
        f"!has({holder}.resourceSharing) || !has(self.resourceClaimTemplates) || {holder}.resourceSharing.all(s, "
        "!has(s.namespace) || s.namespace == '' || !self.resourceClaimTemplates.exists(t, t.name == s.name))"
    )


def _template_rules() -> list[CelRule]:
    groups = GROUPS
    after = "spec.startsAfter"
    return [
        _clique_list_rule(
            "role-name-unique",
            lambda c: (
                f"!{CLIQUES}.exists(o, o.name != {c}.name && o.spec.roleName == {c}.spec.roleName) || "
                f"{CLIQUES}.filter(o, o.spec.roleName == {c}.spec.roleName)[0].name == {c}.name"
            ),
            ".spec.roleName",
            "must be unique across cliques",
        ),
        # Grove checks startsAfter only when cliqueStartupType is Explicit (and ignores it otherwise).
        _clique_list_rule(
            "starts-after-no-empty",
            lambda c: f"!has({c}.{after}) || {c}.{after}.all(p, size(p) > 0)",
            ".spec.startsAfter",
            "must not contain empty clique names",
            explicit_only=True,
        ),
        _clique_list_rule(
            "starts-after-not-self",
            lambda c: f"!has({c}.{after}) || !({c}.name in {c}.{after})",
            ".spec.startsAfter",
            "must not name the clique itself",
            explicit_only=True,
        ),
        _clique_list_rule(
            "starts-after-unique",
            lambda c: f"!has({c}.{after}) || {c}.{after}.all(p, {c}.{after}.exists_one(q, q == p))",
            ".spec.startsAfter",
            "must not name a clique twice",
            explicit_only=True,
        ),
        _clique_list_rule(
            "starts-after-exists",
            lambda c: f"!has({c}.{after}) || {c}.{after}.all(p, size(p) == 0 || {CLIQUES}.exists(o, o.name == p))",
            ".spec.startsAfter",
            "must only name cliques of this PodCliqueSet",
            explicit_only=True,
        ),
        _clique_list_rule(
            "same-scheduler",
            lambda c: f"{_scheduler(c)} == {_scheduler(CLIQUES + '[0]')}",
            ".spec.podSpec.schedulerName",
            "must be the same for all cliques",
        ),
        _group_list_rule(
            "group-members-exist",
            lambda g: f"{g}.cliqueNames.all(n, {CLIQUES}.exists(c, c.name == n))",
            ".cliqueNames",
            "must only name cliques of this PodCliqueSet",
        ),
        _group_list_rule(
            "clique-in-one-group",
            lambda g: f"!{groups}.exists(o, o.name != {g}.name && {g}.cliqueNames.exists(n, n in o.cliqueNames))",
            ".cliqueNames",
            "a clique may belong to at most one scaling group",
        ),
        _clique_list_rule(
            "no-autoscaling-on-group-members",
            lambda c: (
                f"!has({groups}) || !has({c}.spec.autoScalingConfig) || !{groups}.exists(g, {c}.name in g.cliqueNames)"
            ),
            ".spec.autoScalingConfig",
            "is not allowed on cliques that belong to a scaling group; use podCliqueScalingGroups[].scaleConfig",
            reason=FORBIDDEN,
        ),
        CelRule(
            "sharing-namespace-internal",
            PCS,
            T,
            _internal_namespace_ok("self"),
            "spec.template.resourceSharing[].namespace must be empty when name refers to one of "
            "spec.template.resourceClaimTemplates",
            field_path=".resourceSharing",
        ),
        _clique_list_rule(
            "sharing-namespace-internal/clique",
            _internal_namespace_ok,
            ".resourceSharing",
            "namespace must be empty when name refers to one of spec.template.resourceClaimTemplates",
        ),
        _group_list_rule(
            "sharing-namespace-internal/group",
            _internal_namespace_ok,
            ".resourceSharing",
            "namespace must be empty when name refers to one of spec.template.resourceClaimTemplates",
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
            # omitted and [] are the same (no scaling groups): going from one to the other is no change
            f"((!has({groups}) || size({groups}) == 0) && (!has(oldSelf.podCliqueScalingGroups) || "
            "size(oldSelf.podCliqueScalingGroups) == 0)) || "
            f"(has({groups}) && has(oldSelf.podCliqueScalingGroups) && "
            f"size({groups}) == size(oldSelf.podCliqueScalingGroups) && "
            f"{groups}.all(g, oldSelf.podCliqueScalingGroups.exists(o, o.name == g.name)))",
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
    return [
        # Grove: clique names are DNS-1123 subdomains (schema pattern); grove-py also refuses '.', because the
        # pod hostname <pcs>-<i>-[<group>-<j>-]<clique>-<n> must be a DNS-1123 label.
        CelRule(
            "clique-name-no-dot",
            PCS,
            CLIQUE,
            "!self.name.contains('.')",
            "must not contain '.': pod hostnames built from it must be DNS-1123 labels",
            field_path=".name",
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


def _served_schedulers() -> str:
    return "[" + ", ".join(f"'{name}'" for name in ("", *SERVED_SCHEDULER_NAMES)) + "]"


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
    served = ", ".join(SERVED_SCHEDULER_NAMES)
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
            "scheduler-name-served",
            PCS,
            f"{spec}.podSpec",
            f"!has(self.schedulerName) || self.schedulerName in {_served_schedulers()}",
            f"schedulerName must name a scheduler a backend serves: {served} (empty means {DEFAULT_SCHEDULER_NAME})",
            field_path=".schedulerName",
        ),
        # Grove's webhook checks these on create only (optionalOldSelf: oldSelf has a value on update).
        CelRule(
            "pod-spec-no-topology-spread",
            PCS,
            f"{spec}.podSpec",
            "oldSelf.hasValue() || !has(self.topologySpreadConstraints) || size(self.topologySpreadConstraints) == 0",
            "podSpec.topologySpreadConstraints is not allowed: the operator places pods (gang scheduling "
            "and topologyConstraint)",
            field_path=".topologySpreadConstraints",
            reason=FORBIDDEN,
            optional_old_self=True,
        ),
        CelRule(
            "pod-spec-no-node-name",
            PCS,
            f"{spec}.podSpec",
            "oldSelf.hasValue() || !has(self.nodeName) || self.nodeName == ''",
            "podSpec.nodeName is not allowed: pods of a clique are placed by the scheduler",
            field_path=".nodeName",
            reason=FORBIDDEN,
            optional_old_self=True,
        ),
    ]


def _group_rules() -> list[CelRule]:
    scale = "self.scaleConfig"
    return [
        CelRule(
            "group-name-no-dot",
            PCS,
            GROUP,
            "!self.name.contains('.')",
            "must not contain '.': pod hostnames built from it must be DNS-1123 labels",
            field_path=".name",
        ),
        CelRule(
            "group-min-available-le-replicas",
            PCS,
            GROUP,
            "self.minAvailable <= self.replicas",
            "minAvailable must not be greater than replicas",
            field_path=".minAvailable",
        ),
        # Grove checks only minReplicas >= minAvailable on scaleConfig (no maxReplicas checks).
        CelRule(
            "group-scale-min-ge-min-available",
            PCS,
            GROUP,
            f"!has({scale}) || !has({scale}.minReplicas) || {scale}.minReplicas >= self.minAvailable",
            "scaleConfig.minReplicas must be greater than or equal to minAvailable",
            field_path=".scaleConfig.minReplicas",
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


def _sharing_rules() -> list[CelRule]:
    return [
        # Grove: a PodCliqueSet-level filter names at least one clique or scaling group (`filter: {}` is refused).
        CelRule(
            "sharing-filter-not-empty",
            PCS,
            f"{T}.resourceSharing[].filter",
            "(has(self.childCliqueNames) && size(self.childCliqueNames) > 0) || "
            "(has(self.childScalingGroupNames) && size(self.childScalingGroupNames) > 0)",
            "filter must name at least one of childCliqueNames or childScalingGroupNames",
            reason=REQUIRED,
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
    *_topology_template_rules(),
    *_topology_rules(),
    *_clique_rules(),
    *_clique_spec_rules(PCS, CLIQUE_SPEC),
    *_clique_spec_rules(PCLQ, "spec"),
    *_group_rules(),
    *_sharing_rules(),
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
