"""Headless Service per PCS replica (grove-api.md §2.5): `clusterIP: None`, selecting every pod of the replica,
so each pod resolves as `<hostname>.<pcs>-<i>.<ns>.svc.cluster.local`."""

from __future__ import annotations

from typing import Any

from grove.api import PodCliqueSet
from grove.api import constants as c
from grove.expansion import labels, naming, owners


def headless_service(pcs: PodCliqueSet, pcs_owner: dict[str, Any], replica: int) -> dict[str, Any]:
    pcs_name = pcs.metadata.name or ""
    name = naming.service_name(pcs_name, replica)
    config = pcs.spec.template.headless_service_config
    publish = True if config is None else config.publish_not_ready_addresses
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": pcs.metadata.namespace,
            "labels": {
                **labels.component_labels(pcs_name, name, c.COMPONENT_HEADLESS_SERVICE),
                c.LABEL_PCS_REPLICA_INDEX: str(replica),
            },
            "ownerReferences": [owners.controller_ref(pcs_owner)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": {**labels.default_labels(pcs_name), c.LABEL_PCS_REPLICA_INDEX: str(replica)},
            "publishNotReadyAddresses": publish,
        },
    }
