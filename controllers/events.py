"""Kubernetes Events for what users must see (invalid specs, gang breaches). Posted directly (core/v1), so
they work from the operator's own tasks; failures are logged and ignored, as kopf does."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from controllers.client import ApiError, Kube
from controllers.runtime import now

log = logging.getLogger("grove.events")


async def post(kube: Kube, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    meta = obj["metadata"]
    stamp = now()
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:12]}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "grove-operator"},
        "reportingComponent": "grove-operator",
        "reportingInstance": "grove-operator",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    try:
        await kube.create(event)
    except Exception as error:  # never let an Event break a reconcile
        if isinstance(error, ApiError) and error.namespace_terminating:  # it goes with its namespace (issue 14)
            log.debug("event %s on %s dropped: namespace %s is terminating", reason, meta["name"], meta["namespace"])
            return
        log.warning("could not post event %s on %s: %s", reason, meta["name"], error)
