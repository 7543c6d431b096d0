"""kopf handlers for ComputeDomains: the channel ResourceClaimTemplate and the status (a thin shell).

Importing this module registers the handlers (and a kubeconfig login) in kopf's default registry, so it runs
alone with `kopf run --standalone --all-namespaces -m grove.computedomain.controller`. An operator with its own
registry adds them with `register(registry, with_login=False)`.

Everything is event-driven (no timers, no daemons, so kopf adds no finalizer and writes nothing of its own):

- indexes keep, in memory, the ComputeDomains by UID, their channel templates and the channel claims by
  domain;
- a ComputeDomain event creates the missing channel template and refreshes the status;
- a template deletion recreates it (the ComputeDomain still exists);
- a channel claim event refreshes the status of its domain.

The status follows the claims only (their allocation's node and their reservation), never pods: the operator
watches only grove-managed pods, and the domains of any other pod (NVIDIA's own demos) must get a status too
(issue 14). Status writes happen only when the computed status differs from the current one. While a
namespace is deleted, its objects vanish in any order: 404/409 and "namespace is terminating" answers are
expected then and are not errors. The pure parts live in `templates` and `status`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

import kopf
from kubernetes import client, config

from grove.computedomain import model as m
from grove.computedomain import status as st
from grove.computedomain.templates import channel_template, claim_domain

log = logging.getLogger(__name__)

RESOURCE_GROUP = "resource.k8s.io"
RESOURCE_VERSION = "v1"
NODE_CLIQUE_LABEL = "nvidia.com/gpu.clique"


T = TypeVar("T")
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


def with_retries(call: Callable[[], T]) -> T:
    """Event handlers are not retried by kopf (an error is logged and dropped until the next event), so
    transient API errors (5xx, 429, connection resets) are retried here."""
    for delay in RETRY_DELAYS:
        try:
            return call()
        except client.ApiException as error:
            if error.status is not None and error.status < 500 and error.status != 429:
                raise
            log.warning("API error %s, retrying in %.1fs", error.status, delay)
        except OSError as error:
            log.warning("connection error %s, retrying in %.1fs", error, delay)
        time.sleep(delay)
    return call()


class DomainInfo(NamedTuple):
    """What the status computation needs from a ComputeDomain."""

    namespace: str
    name: str
    num_nodes: int
    status: Mapping[str, Any] | None


_api_lock = threading.Lock()
_api_client: client.ApiClient | None = None
_node_cache: dict[str, st.NodeInfo] = {}


def api_client() -> client.ApiClient:
    """One shared client: in-cluster credentials, else KUBECONFIG / ~/.kube/config."""
    global _api_client
    with _api_lock:
        if _api_client is None:
            try:
                config.load_incluster_config()
                _api_client = client.ApiClient()
            except config.ConfigException:
                # KUBECONFIG is read now, not when the kubernetes package was imported
                path = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or None
                _api_client = config.new_client_from_config(config_file=path)
        return _api_client


def _domain_info(body: Mapping[str, Any]) -> DomainInfo:
    meta = body.get("metadata") or {}
    return DomainInfo(
        str(meta.get("namespace", "")),
        str(meta.get("name", "")),
        int((body.get("spec") or {}).get("numNodes") or 0),
        body.get("status"),
    )


# ----------------------------------------------------------------------------------------------- indexes


def cd_domains(body: kopf.Body, meta: kopf.Meta, **_: Any) -> dict[str, DomainInfo]:
    return {str(meta.get("uid")): _domain_info(body)}


def cd_templates(labels: kopf.Labels, meta: kopf.Meta, **_: Any) -> dict[str, tuple[str, str]]:
    return {str(labels[m.LABEL_COMPUTE_DOMAIN]): (str(meta.get("namespace")), str(meta.get("name")))}


def _is_channel_claim(body: kopf.Body, **_: Any) -> bool:
    return claim_domain(body) is not None


def cd_claims(body: kopf.Body, **_: Any) -> dict[str, st.ClaimInfo]:
    return {claim_domain(body) or "": st.claim_info(body)}


# ---------------------------------------------------------------------------------------------- handlers


def _store(index: kopf.Index[Any, Any], key: Any) -> list[Any]:
    return list(index.get(key, []))


def _node_info(name: str) -> st.NodeInfo:
    """InternalIP and NVLink clique of a node, cached (nodes do not change either once up)."""
    if name in _node_cache:
        return _node_cache[name]
    try:
        node = client.CoreV1Api(api_client()).read_node(name)
    except client.ApiException as error:
        log.warning("cannot read node %s: %s", name, error.reason)
        return st.NodeInfo("", "")
    addresses = (node.status.addresses if node.status else None) or []
    ip = next((a.address for a in addresses if a.type == "InternalIP"), "")
    clique = ((node.metadata.labels if node.metadata else None) or {}).get(NODE_CLIQUE_LABEL, "")
    info = st.NodeInfo(ip, clique)
    _node_cache[name] = info
    return info


def expected_during_deletion(error: client.ApiException) -> bool:
    """API answers that mean the object or its namespace is going away (or is there already): a normal race
    while a namespace is deleted, not an error (issue 14)."""
    terminating = error.status == 403 and "NamespaceTerminating" in str(error.body or "")
    return error.status in (404, 409) or terminating


def sync_status(uid: str, domain: DomainInfo, cd_claims: kopf.Index[str, st.ClaimInfo]) -> None:
    """Patch the domain's status if it differs from what its channel claims say."""
    claims: Iterable[st.ClaimInfo] = _store(cd_claims, uid)
    joined = st.joined_nodes(claims)
    current = domain.status or {}
    desired = st.desired_status(domain.num_nodes, current.get("nodes") or [], joined, _node_info)
    if not st.status_changed(current, desired):
        return
    try:
        with_retries(
            lambda: client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status(
                m.GROUP, m.VERSION, domain.namespace, m.PLURAL, domain.name, {"status": desired}
            )
        )
        log.info(
            "ComputeDomain %s/%s: %s, %d node(s)",
            domain.namespace,
            domain.name,
            desired["status"],
            len(desired["nodes"]),
        )
    except client.ApiException as error:
        if not expected_during_deletion(error):
            raise
        log.info(
            "ComputeDomain %s/%s: status not written (%s): it is being deleted",
            domain.namespace,
            domain.name,
            error.reason,
        )


def ensure_template(body: Mapping[str, Any]) -> None:
    """Create the channel template; an existing one is left alone (the spec is immutable anyway)."""
    template = channel_template(body)
    try:
        with_retries(
            lambda: client.ResourceV1Api(api_client()).create_namespaced_resource_claim_template(
                template["metadata"]["namespace"],
                template,  # type: ignore[arg-type]  # dicts are sent as is
            )
        )
        log.info("created ResourceClaimTemplate %s/%s", template["metadata"]["namespace"], template["metadata"]["name"])
    except client.ApiException as error:
        if error.status == 409:
            return  # it exists already
        if not expected_during_deletion(error):
            raise
        log.info(
            "ResourceClaimTemplate %s/%s not created (%s): its namespace is being deleted",
            template["metadata"]["namespace"],
            template["metadata"]["name"],
            error.reason,
        )


# Indexes reach the handlers as keyword arguments named after the index functions; kopf's handler protocol
# types only its own arguments, so they are taken from **kwargs.


def _index(kwargs: Mapping[str, Any], name: str) -> kopf.Index[Any, Any]:
    index: kopf.Index[Any, Any] = kwargs[name]
    return index


def cd_event(*, type: str, body: kopf.Body, meta: kopf.Meta, **kwargs: Any) -> None:
    if type == "DELETED" or meta.get("deletionTimestamp"):
        return
    uid = str(meta.get("uid"))
    if uid not in _index(kwargs, "cd_templates"):
        ensure_template(body)
    sync_status(uid, _domain_info(body), _index(kwargs, "cd_claims"))


def cd_template_event(*, type: str, labels: kopf.Labels, **kwargs: Any) -> None:
    """A deleted channel template of a live ComputeDomain comes back."""
    if type != "DELETED":
        return
    uid = str(labels[m.LABEL_COMPUTE_DOMAIN])
    for domain in _store(_index(kwargs, "cd_domains"), uid):
        try:
            cd: Any = client.CustomObjectsApi(api_client()).get_namespaced_custom_object(
                m.GROUP, m.VERSION, domain.namespace, m.PLURAL, domain.name
            )
        except client.ApiException as error:
            if expected_during_deletion(error):
                continue
            raise
        if not (cd.get("metadata") or {}).get("deletionTimestamp"):
            ensure_template(cd)


def cd_claim_event(*, body: kopf.Body, **kwargs: Any) -> None:
    uid = claim_domain(body) or ""
    for domain in _store(_index(kwargs, "cd_domains"), uid):
        sync_status(uid, domain, _index(kwargs, "cd_claims"))


# ------------------------------------------------------------------------------------------------ wiring

CD_RESOURCE = (m.GROUP, m.VERSION, m.PLURAL)
TEMPLATE_RESOURCE = (RESOURCE_GROUP, RESOURCE_VERSION, "resourceclaimtemplates")
CLAIM_RESOURCE = (RESOURCE_GROUP, RESOURCE_VERSION, "resourceclaims")
CHANNEL_TEMPLATES = {m.LABEL_COMPUTE_DOMAIN: kopf.PRESENT}


async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own kubeconfig / service-account login (its default via the kubernetes client fails with
    client-certificate kubeconfigs and kubernetes 37)."""
    return kopf.login_with_kubeconfig(**kwargs) or kopf.login_with_service_account(**kwargs)


def register(registry: kopf.OperatorRegistry, *, with_login: bool = True) -> None:
    """Add the ComputeDomain indexes and handlers to `registry` (the operator passes its own registry and
    `with_login=False`, as it logs in itself). Index ids are the keyword names the handlers look up."""
    for fn, resource, filters in (
        (cd_domains, CD_RESOURCE, {}),
        (cd_templates, TEMPLATE_RESOURCE, {"labels": CHANNEL_TEMPLATES}),
        (cd_claims, CLAIM_RESOURCE, {"when": _is_channel_claim}),
    ):
        kopf.index(*resource, id=fn.__name__, registry=registry, **filters)(fn)
    for handler, resource, filters in (
        (cd_event, CD_RESOURCE, {}),
        (cd_template_event, TEMPLATE_RESOURCE, {"labels": CHANNEL_TEMPLATES}),
        (cd_claim_event, CLAIM_RESOURCE, {"when": _is_channel_claim}),
    ):
        kopf.on.event(*resource, id=handler.__name__, registry=registry, **filters)(handler)
    if with_login:
        kopf.on.login(id="cd_login", registry=registry)(login)


# `kopf run -m grove.computedomain.controller` serves the default registry.
register(kopf.get_default_registry())
