"""Grove's defaulting webhook, as a pure function.

grove-py has no mutating webhook: the CRD schema fills the defaults it can express (for example
`cliqueStartupType`, scaling-group `replicas`), and the operator calls `apply_defaults` on what it reads
before expanding a PodCliqueSet, so it sees exactly what Grove's webhook would have stored
(`operator/internal/webhook/admission/pcs/defaulting/podcliqueset.go`).
"""

from grove.api.constants import DEFAULT_TERMINATION_DELAY
from grove.api.podcliqueset import HeadlessServiceConfig, PodCliqueSet

DEFAULT_NAMESPACE = "default"
DEFAULT_RESTART_POLICY = "Always"
DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30


def apply_defaults(pcs: PodCliqueSet) -> PodCliqueSet:
    """A copy of `pcs` with Grove's webhook defaults filled in; the argument is left untouched.

    Idempotent: defaulting an already defaulted object changes nothing, which the operator relies on when
    it compares hashes of defaulted specs.
    """
    out = pcs.model_copy(deep=True)
    if not out.metadata.namespace:
        out.metadata.namespace = DEFAULT_NAMESPACE
    template = out.spec.template
    for clique in template.cliques:
        spec = clique.spec
        if not spec.pod_spec.get("restartPolicy"):
            spec.pod_spec["restartPolicy"] = DEFAULT_RESTART_POLICY
        if spec.pod_spec.get("terminationGracePeriodSeconds") is None:
            spec.pod_spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
        if spec.replicas == 0:
            spec.replicas = 1
        if spec.min_available is None:
            spec.min_available = spec.replicas
        if spec.auto_scaling_config is not None and spec.auto_scaling_config.min_replicas is None:
            spec.auto_scaling_config.min_replicas = spec.replicas
    for group in template.pod_clique_scaling_groups or []:
        if group.scale_config is not None and group.scale_config.min_replicas is None:
            group.scale_config.min_replicas = group.replicas
    if template.termination_delay is None:
        template.termination_delay = DEFAULT_TERMINATION_DELAY
    if template.headless_service_config is None:
        template.headless_service_config = HeadlessServiceConfig(publish_not_ready_addresses=True)
    return out
