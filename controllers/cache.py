"""In-memory views of the cluster, fed by kopf indexes (`@kopf.index`) and, for pods, by the operator's own
watch (`controllers.podwatch`, issue #13): one index per kind, with several key families per object, so every
lookup a reconcile needs is O(1) and no reconcile ever GETs or LISTs.

kopf fills every index from its initial LIST before any other handler runs (`Cache.bound` is set by the first
handler), and the pod watch says when its first LIST is in; the work queue starts only after both, so a
reconcile never sees a half-filled cache (important after a restart: a half-filled cache would make the
operator re-create objects that exist).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from grove.api import constants as c
from grove.expansion.observed import PodView

# Index ids (also the kwarg names kopf injects into handlers).
PCS = "grove_pcs"
PCSG = "grove_pcsg"
PCLQ = "grove_pclq"
PODS = "grove_pods"  # the pod watch's index (not kopf's)
GANGS = "grove_podgangs"
SERVICES = "grove_services"
# Claim objects (grove.claims): ResourceClaims, ResourceClaimTemplates and ComputeDomains owned by a PCS; the
# template index also keeps every ResourceClaimTemplate's spec by name (external resourceSharing templates).
CLAIMS = "grove_claims"
TEMPLATES = "grove_claim_templates"
DOMAINS = "grove_computedomains"
HPAS = "grove_hpas"
INDEX_IDS = (PCS, PCSG, PCLQ, PODS, GANGS, SERVICES, CLAIMS, TEMPLATES, DOMAINS, HPAS)
# Component label values of the claim objects the operator creates (grove.claims.cleanup.COMPONENTS).
CLAIM_COMPONENTS = frozenset({c.COMPONENT_RESOURCE_CLAIM, c.COMPONENT_RESOURCE_CLAIM_TEMPLATE, "pcs-computedomain"})


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict of a kopf body without managedFields (they are big and never read)."""
    out = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec", "status") if k in body}
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


def _owner(meta: Mapping[str, Any]) -> tuple[str, str] | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("kind", ""), ref.get("name", "")
    return None


def index_pcs(body: Mapping[str, Any]) -> dict[Any, Any]:
    meta = body["metadata"]
    return {("name", meta["namespace"], meta["name"]): plain(body)}


def index_pcsg(body: Mapping[str, Any]) -> dict[Any, Any]:
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    out: dict[Any, Any] = {("name", ns, name): plain(body)}
    pcs = (meta.get("labels") or {}).get(c.LABEL_PART_OF)
    if pcs:
        out[("pcs", ns, pcs)] = name
    return out


# PodCliques of one clique template carry equal pod specs in every PCS replica (and scaling-group replica):
# the cache keeps one copy of each (issue #13: with large templates the copies were most of the cache). Never
# mutated: expansion deep-copies a PodClique's podSpec before changing it.
_POD_SPECS: dict[str, Any] = {}
_POD_SPECS_MAX = 1024  # distinct templates kept; the oldest goes first


def shared_pod_spec(pod_spec: Any) -> Any:
    """The one cached copy of a pod spec equal to `pod_spec` (itself the first time)."""
    key = json.dumps(pod_spec, sort_keys=True, separators=(",", ":"))
    shared = _POD_SPECS.get(key)
    if shared is None:
        if len(_POD_SPECS) >= _POD_SPECS_MAX:
            del _POD_SPECS[next(iter(_POD_SPECS))]
        _POD_SPECS[key] = shared = pod_spec
    return shared


def index_pclq(body: Mapping[str, Any]) -> dict[Any, Any]:
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    labels = meta.get("labels") or {}
    obj = plain(body)
    if isinstance(obj.get("spec"), Mapping) and "podSpec" in obj["spec"]:
        obj["spec"] = {**obj["spec"], "podSpec": shared_pod_spec(obj["spec"]["podSpec"])}
    out: dict[Any, Any] = {("name", ns, name): obj}
    owner = _owner(meta)
    if owner:
        out[("owner", ns, owner[0], owner[1])] = name
    if labels.get(c.LABEL_PART_OF):
        out[("pcs", ns, labels[c.LABEL_PART_OF])] = name
    if labels.get(c.LABEL_BASE_PODGANG):
        out[("base", ns, labels[c.LABEL_BASE_PODGANG])] = name
    for parent in (body.get("spec") or {}).get("startsAfter") or []:
        out[("parent", ns, parent)] = name
    return out


def index_gang(body: Mapping[str, Any]) -> dict[Any, Any]:
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    out: dict[Any, Any] = {("name", ns, name): plain(body)}
    pcs = (meta.get("labels") or {}).get(c.LABEL_PART_OF)
    if pcs:
        out[("pcs", ns, pcs)] = name
    return out


def index_service(body: Mapping[str, Any]) -> dict[Any, Any] | None:
    meta = body["metadata"]
    pcs = (meta.get("labels") or {}).get(c.LABEL_PART_OF)
    if not pcs:
        return None
    ns, name = meta["namespace"], meta["name"]
    return {("name", ns, name): plain(body), ("pcs", ns, pcs): name}


def index_hpa(body: Mapping[str, Any]) -> dict[Any, Any] | None:
    """HorizontalPodAutoscalers the operator created (component `pcs-hpa`); others are not ours."""
    meta = body["metadata"]
    labels = meta.get("labels") or {}
    pcs = labels.get(c.LABEL_PART_OF)
    if not pcs or labels.get(c.LABEL_COMPONENT) != c.COMPONENT_HPA:
        return None
    ns, name = meta["namespace"], meta["name"]
    return {("name", ns, name): plain(body), ("pcs", ns, pcs): name}


def _slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """apiVersion, kind and the metadata the claim reconcile reads (no spec: claims can be large)."""
    meta = body.get("metadata") or {}
    keep = ("name", "namespace", "uid", "labels", "deletionTimestamp", "resourceVersion")
    return {
        "apiVersion": body.get("apiVersion", ""),
        "kind": body.get("kind", ""),
        "metadata": {k: meta[k] for k in keep if k in meta},
    }


def _claim_keys(body: Mapping[str, Any]) -> dict[Any, Any]:
    """Keys of a claim object created by the operator for a PodCliqueSet (by label and controller owner)."""
    meta = body["metadata"]
    labels = meta.get("labels") or {}
    pcs = labels.get(c.LABEL_PART_OF)
    owner = _owner(meta)
    if not pcs or labels.get(c.LABEL_COMPONENT) not in CLAIM_COMPONENTS or owner != (c.KIND_PODCLIQUESET, pcs):
        return {}
    ns, name = meta.get("namespace", ""), meta["name"]
    slim = _slim(body)
    return {("pcs", ns, pcs): slim, ("name", ns, body.get("kind", ""), name): slim}


def index_claim(body: Mapping[str, Any]) -> dict[Any, Any] | None:
    return _claim_keys(body) or None


def index_claim_template(body: Mapping[str, Any]) -> dict[Any, Any]:
    out = _claim_keys(body)
    meta = body["metadata"]
    out[("template", meta.get("namespace", ""), meta["name"])] = {
        "metadata": {"resourceVersion": meta.get("resourceVersion")},
        "spec": body.get("spec") or {},
    }
    return out


# Objects the operator created, as the API server answered, until their first watch event (issue #13): under a
# write burst the watch delivers seconds late, and a PodClique's pods need only its uid to be created.
WRITE_THROUGH_TTL = 30.0


class Cache:
    """Read access to the kopf indexes (bound by the first kopf handler) and the pod watch's index, plus the
    operator's own creates that the watch has not delivered yet (`remember`; only for by-name lookups of
    PodCliques, scaling groups and PodGangs)."""

    def __init__(self) -> None:
        self.indexes: dict[str, Mapping[Any, Iterable[Any]]] = {}
        self.created: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}
        self.bound = asyncio.Event()

    def remember(self, obj: Mapping[str, Any]) -> None:
        """A create's answer, served by name until the object's first watch event (`forget`)."""
        meta = obj.get("metadata") or {}
        self.created[(str(obj.get("kind")), meta.get("namespace", ""), meta.get("name", ""))] = (
            time.monotonic(),
            plain(obj),
        )

    def forget(self, kind: str, ns: str, name: str) -> None:
        self.created.pop((kind, ns, name), None)

    def _created(self, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        hit = self.created.get((kind, ns, name))
        if hit is None:
            return None
        if time.monotonic() - hit[0] > WRITE_THROUGH_TTL:  # the watch reports every object: it is not coming
            del self.created[(kind, ns, name)]
            return None
        return hit[1]

    def bind(self, kwargs: Mapping[str, Any]) -> None:
        """Take the kopf indexes from a handler's kwargs (kopf runs no handler before they are filled)."""
        if not self.bound.is_set():
            self.indexes.update({i: kwargs[i] for i in INDEX_IDS if i in kwargs})
            self.bound.set()

    def _all(self, index: str, key: tuple[Any, ...]) -> list[Any]:
        idx = self.indexes.get(index)
        if idx is None or key not in idx:
            return []
        return list(idx[key])

    def _one(self, index: str, key: tuple[Any, ...]) -> Any:
        values = self._all(index, key)
        return values[0] if values else None

    def pcs(self, ns: str, name: str) -> dict[str, Any] | None:
        return self._one(PCS, ("name", ns, name))

    def pcsg(self, ns: str, name: str) -> dict[str, Any] | None:
        return self._one(PCSG, ("name", ns, name)) or self._created(c.KIND_PODCLIQUESCALINGGROUP, ns, name)

    def pclq(self, ns: str, name: str) -> dict[str, Any] | None:
        return self._one(PCLQ, ("name", ns, name)) or self._created(c.KIND_PODCLIQUE, ns, name)

    def podgang(self, ns: str, name: str) -> dict[str, Any] | None:
        return self._one(GANGS, ("name", ns, name)) or self._created(c.KIND_PODGANG, ns, name)

    def service(self, ns: str, name: str) -> dict[str, Any] | None:
        return self._one(SERVICES, ("name", ns, name))

    def pods(self, ns: str, pclq: str) -> list[PodView]:
        return self._all(PODS, ("pclq", ns, pclq))

    def _objects(self, index: str, key: tuple[Any, ...], ns: str) -> list[dict[str, Any]]:
        out = []
        for name in sorted(set(self._all(index, key))):
            obj = self._one(index, ("name", ns, name))
            if obj is not None:
                out.append(obj)
        return out

    def pcsgs_of_pcs(self, ns: str, pcs: str) -> list[dict[str, Any]]:
        return self._objects(PCSG, ("pcs", ns, pcs), ns)

    def pclqs_of_pcs(self, ns: str, pcs: str) -> list[dict[str, Any]]:
        return self._objects(PCLQ, ("pcs", ns, pcs), ns)

    def pclqs_owned_by(self, ns: str, kind: str, owner: str) -> list[dict[str, Any]]:
        return self._objects(PCLQ, ("owner", ns, kind, owner), ns)

    def dependents_of(self, ns: str, pclq: str) -> list[str]:
        return sorted(set(self._all(PCLQ, ("parent", ns, pclq))))

    def scaled_pclqs_of_base(self, ns: str, base_gang: str) -> list[str]:
        return sorted(set(self._all(PCLQ, ("base", ns, base_gang))))

    def podgangs_of_pcs(self, ns: str, pcs: str) -> list[dict[str, Any]]:
        return self._objects(GANGS, ("pcs", ns, pcs), ns)

    def services_of_pcs(self, ns: str, pcs: str) -> list[dict[str, Any]]:
        return self._objects(SERVICES, ("pcs", ns, pcs), ns)

    def hpa(self, ns: str, name: str) -> dict[str, Any] | None:
        return self._one(HPAS, ("name", ns, name))

    def hpas_of_pcs(self, ns: str, pcs: str) -> list[dict[str, Any]]:
        return self._objects(HPAS, ("pcs", ns, pcs), ns)

    def claim_objects_of_pcs(self, ns: str, pcs: str) -> list[dict[str, Any]]:
        """ResourceClaims, ResourceClaimTemplates and ComputeDomains the operator created for a PCS."""
        return [o for i in (CLAIMS, TEMPLATES, DOMAINS) for o in self._all(i, ("pcs", ns, pcs))]

    def claim_object(self, ns: str, kind: str, name: str) -> dict[str, Any] | None:
        for index in (CLAIMS, TEMPLATES, DOMAINS):
            found = self._one(index, ("name", ns, kind, name))
            if found is not None:
                return found
        return None

    def claim_template(self, ns: str, name: str) -> dict[str, Any] | None:
        """Any ResourceClaimTemplate by name ({metadata: {resourceVersion}, spec}), e.g. an external one."""
        return self._one(TEMPLATES, ("template", ns, name))
