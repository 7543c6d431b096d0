"""Periodic unprepare of claims that no longer exist (force-deleted pods, a kubelet that never called us).

The kubelet normally unprepares, but a force-deleted pod or a node-local failure can leave a claim
prepared forever, holding its devices. Like NVIDIA's CheckpointCleanupManager, every ``interval``
seconds each prepared claim is looked up by namespace/name; if it is gone, or the name now belongs to
a different UID, it is unprepared. Any other lookup error leaves the claim alone (never guess).
"""

from __future__ import annotations

import logging
import threading

from kubernetes import client

from grove.dra.kube import raw_json
from grove.dra.prepare import ClaimRef, Preparer

log = logging.getLogger(__name__)


def stale_claims(preparer: Preparer, api: client.ResourceV1Api) -> list[ClaimRef]:
    """Prepared claims whose ResourceClaim is gone or was replaced."""
    stale: list[ClaimRef] = []
    for uid, rec in preparer.prepared_claims().items():
        try:
            claim = raw_json(api.read_namespaced_resource_claim(rec.name, rec.namespace, _preload_content=False))
        except client.ApiException as e:
            if e.status == 404:
                stale.append(ClaimRef(rec.namespace, uid, rec.name))
            continue
        if claim.get("metadata", {}).get("uid") != uid:
            stale.append(ClaimRef(rec.namespace, uid, rec.name))
    return stale


def run_cleanup(preparer: Preparer, api_client: client.ApiClient) -> list[ClaimRef]:
    """One pass; returns what was unprepared."""
    stale = stale_claims(preparer, client.ResourceV1Api(api_client))
    if stale:
        errors = preparer.unprepare(stale)
        for ref in stale:
            if errors.get(ref.uid):
                log.error("cleanup of stale claim %s/%s failed: %s", ref.namespace, ref.name, errors[ref.uid])
            else:
                log.warning("unprepared stale claim %s/%s (%s): ResourceClaim gone", ref.namespace, ref.name, ref.uid)
    return stale


def cleanup_loop(preparer: Preparer, api_client: client.ApiClient, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            run_cleanup(preparer, api_client)
        except Exception as e:
            log.error("stale-claim cleanup pass failed: %s", e)
