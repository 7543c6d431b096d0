"""Names shared with Grove: label keys, annotations, gates, finalizers and environment variables.

They are part of the compatibility surface (manifests, dashboards and tools written for Grove read them),
so they are spelled exactly as Grove spells them.
"""

from typing import Final

GROUP: Final = "grove.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
SCHEDULER_GROUP: Final = "scheduler.grove.io"
SCHEDULER_API_VERSION: Final = f"{SCHEDULER_GROUP}/{VERSION}"

KIND_PODCLIQUESET: Final = "PodCliqueSet"
KIND_PODCLIQUE: Final = "PodClique"
KIND_PODCLIQUESCALINGGROUP: Final = "PodCliqueScalingGroup"
KIND_PODGANG: Final = "PodGang"

# Labels on every managed object.
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_MANAGED_BY_VALUE: Final = "grove-operator"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"

COMPONENT_HEADLESS_SERVICE: Final = "pcs-headless-service"
COMPONENT_PCS_PODCLIQUE: Final = "pcs-podclique"
COMPONENT_PCSG_PODCLIQUE: Final = "pcsg-podclique"
COMPONENT_SCALING_GROUP: Final = "pcs-podcliquescalinggroup"
COMPONENT_PODGANG: Final = "podgang"
COMPONENT_HPA: Final = "pcs-hpa"
COMPONENT_RESOURCE_CLAIM: Final = "resource-claim"
COMPONENT_RESOURCE_CLAIM_TEMPLATE: Final = "resource-claim-template"
COMPONENT_COMPUTE_DOMAIN: Final = "compute-domain"

LABEL_PODCLIQUE: Final = "grove.io/podclique"
LABEL_PODGANG: Final = "grove.io/podgang"
LABEL_BASE_PODGANG: Final = "grove.io/base-podgang"
LABEL_PCS_REPLICA_INDEX: Final = "grove.io/podcliqueset-replica-index"
LABEL_PCSG: Final = "grove.io/podcliquescalinggroup"
LABEL_PCSG_REPLICA_INDEX: Final = "grove.io/podcliquescalinggroup-replica-index"
LABEL_POD_INDEX: Final = "grove.io/podclique-pod-index"
LABEL_PCSG_POD_INDEX: Final = "grove.io/podcliquescalinggroup-pod-index"
LABEL_POD_TEMPLATE_HASH: Final = "grove.io/pod-template-hash"
LABEL_SCHEDULER_NAME: Final = "grove.io/scheduler-name"
LABEL_MNNVL_GROUP: Final = "grove.io/mnnvl-group"

# Annotations.
ANNOTATION_RECONCILE_TRIGGER: Final = "grove.io/reconcile-trigger"
ANNOTATION_MNNVL_GROUP: Final = "grove.io/mnnvl-group"
ANNOTATION_TOPOLOGY_NAME: Final = "grove.io/topology-name"
# grove-py: startup order (issue #4). Dependent pods carry "false" until their parents are ready; the
# startup-wait init container and KWOK's stages both read it.
ANNOTATION_STARTUP_RELEASED: Final = "grove.io/startup-released"

# grove-py: the template `replicas` last applied to a PodClique / PodCliqueScalingGroup (Grove #150).
# A child's replicas follow the template when the template value changes; otherwise `/scale` on the child wins.
ANNOTATION_TEMPLATE_REPLICAS: Final = "grove.io/template-replicas"

# Scheduling gate that holds pods until they are listed in their PodGang.
SCHEDULING_GATE: Final = "grove.io/podgang-pending-creation"

FINALIZER_PODCLIQUESET: Final = "grove.io/podcliqueset.grove.io"
FINALIZER_PODCLIQUE: Final = "grove.io/podclique.grove.io"
FINALIZER_SCALING_GROUP: Final = "grove.io/podcliquescalinggroup.grove.io"
FINALIZER_COMPUTE_DOMAIN: Final = "grove.io/computedomain-finalizer"

# Environment variables injected into every container (before the user's own).
ENV_PCS_NAME: Final = "GROVE_PCS_NAME"
ENV_PCS_INDEX: Final = "GROVE_PCS_INDEX"
ENV_PCLQ_NAME: Final = "GROVE_PCLQ_NAME"
ENV_HEADLESS_SERVICE: Final = "GROVE_HEADLESS_SERVICE"
ENV_PCLQ_POD_INDEX: Final = "GROVE_PCLQ_POD_INDEX"
ENV_PCSG_NAME: Final = "GROVE_PCSG_NAME"
ENV_PCSG_INDEX: Final = "GROVE_PCSG_INDEX"
ENV_PCSG_TEMPLATE_NUM_PODS: Final = "GROVE_PCSG_TEMPLATE_NUM_PODS"
ENV_PCSG_POD_INDEX: Final = "GROVE_PCSG_POD_INDEX"

# Condition types and reasons.
CONDITION_MIN_AVAILABLE_BREACHED: Final = "MinAvailableBreached"
CONDITION_PODCLIQUE_SCHEDULED: Final = "PodCliqueScheduled"
CONDITION_READY: Final = "Ready"  # grove-py addition, Grove issue #112
CONDITION_GANG_TERMINATION_IN_PROGRESS: Final = "GangTerminationInProgress"
REASON_GANG_TERMINATION_ACTIVE: Final = "GangTerminationActive"
CONDITION_SPEC_VALID: Final = "SpecValid"  # grove-py: rules CEL cannot express, checked by the operator

# Name budget: pod names are <pcs>-<i>-[<pcsg>-<j>-]<clique>-<suffix> and must stay within 63 characters.
MAX_COMBINED_NAME_LENGTH: Final = 45

DEFAULT_TERMINATION_DELAY: Final = "4h"
DEFAULT_SCHEDULER_NAME: Final = "default-scheduler"
