"""`GROVE_*` environment variables (grove-api.md §1.8).

They are prepended to every container and init container; a user variable with the same name is dropped
(Grove's value wins), and because they come first, user variables can refer to them with `$(VAR)` (#753).
Indices that differ per pod come from the downward API, so the pod spec itself is the same for every pod.
"""

from __future__ import annotations

import copy
from typing import Any

from grove.api import constants as c


def _value(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _label(name: str, label: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{label}']"}}}


def base_env(pcs: str, replica: int, pclq: str, namespace: str) -> list[dict[str, Any]]:
    """Variables for every pod: PCS name and index, PCLQ FQN, headless service FQDN, pod index."""
    return [
        _value(c.ENV_PCS_NAME, pcs),
        _value(c.ENV_PCS_INDEX, str(replica)),
        _value(c.ENV_PCLQ_NAME, pclq),
        _value(c.ENV_HEADLESS_SERVICE, f"{pcs}-{replica}.{namespace}.svc.cluster.local"),
        _label(c.ENV_PCLQ_POD_INDEX, c.LABEL_POD_INDEX),
    ]


def scaling_group_env(template_num_pods: int) -> list[dict[str, Any]]:
    """Extra variables for scaling-group members. Name and index come from the pod's labels; the number of
    pods is the sum of the member templates' replicas, fixed when the PodClique is created (as Grove)."""
    return [
        _label(c.ENV_PCSG_NAME, c.LABEL_PCSG),
        _label(c.ENV_PCSG_INDEX, c.LABEL_PCSG_REPLICA_INDEX),
        _value(c.ENV_PCSG_TEMPLATE_NUM_PODS, str(template_num_pods)),
    ]


def prepend_env(pod_spec: dict[str, Any], env: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of pod_spec with `env` first in every container and init container (duplicates removed)."""
    names = {e["name"] for e in env}
    out = copy.deepcopy(pod_spec)
    for key in ("initContainers", "containers"):
        for container in out.get(key) or []:
            user = [e for e in container.get("env") or [] if e.get("name") not in names]
            container["env"] = copy.deepcopy(env) + user
    return out
