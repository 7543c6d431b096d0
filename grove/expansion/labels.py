"""Labels and annotations of generated objects (grove-api.md §1.8). Labels are the source of truth: the
operator finds owners, replica indices and gangs from them, never from parsing names alone."""

from __future__ import annotations

from collections.abc import Mapping

from grove.api import constants as c

ANNOTATION_TEMPLATE_REPLICAS = c.ANNOTATION_TEMPLATE_REPLICAS
# grove-py: hash of a scaling group's member clique templates, on the PCSG (its change triggers the PCSG).
ANNOTATION_MEMBERS_HASH = "grove.io/members-template-hash"

MANAGED_BY_SELECTOR = f"{c.LABEL_MANAGED_BY}={c.LABEL_MANAGED_BY_VALUE}"


def default_labels(pcs: str) -> dict[str, str]:
    """Labels on every managed object: managed-by and part-of (the PCS name comes from part-of)."""
    return {c.LABEL_MANAGED_BY: c.LABEL_MANAGED_BY_VALUE, c.LABEL_PART_OF: pcs}


def component_labels(pcs: str, name: str, component: str) -> dict[str, str]:
    """Default labels plus app.kubernetes.io/name and component."""
    return {**default_labels(pcs), c.LABEL_NAME: name, c.LABEL_COMPONENT: component}


def without_grove_keys(values: Mapping[str, str] | None) -> dict[str, str]:
    """Copy of user labels/annotations without `grove.io/` keys (Grove copies PCS metadata to PodGangs so)."""
    return {k: v for k, v in (values or {}).items() if not k.startswith("grove.io/")}


def pcs_selector(pcs: str) -> str:
    """Selector of every pod of a PodCliqueSet: PCS `status.hpaPodSelector` (Grove #591)."""
    return f"{MANAGED_BY_SELECTOR},{c.LABEL_PART_OF}={pcs}"


def podclique_selector(pcs: str, pclq: str) -> str:
    """Selector of a standalone PodClique's pods: PCLQ `status.hpaPodSelector`."""
    return f"{pcs_selector(pcs)},{c.LABEL_PODCLIQUE}={pclq}"


def scaling_group_selector(pcs: str, pcsg: str) -> str:
    """Selector of a scaling group's pods: PCSG `status.selector`."""
    return f"{pcs_selector(pcs)},{c.LABEL_PCSG}={pcsg}"


def parse_selector(selector: str) -> dict[str, str]:
    """`a=b,c=d` to a dict (only equality selectors are produced here)."""
    out: dict[str, str] = {}
    for part in selector.split(","):
        if part:
            key, _, value = part.partition("=")
            out[key] = value
    return out
