"""CDI spec files: one transient spec per claim, written atomically.

Layout follows NVIDIA's driver: kind ``k8s.<driver>/claim`` (``k8s.gpu.nvidia.com/claim``), file
``<cdiRoot>/k8s.gpu.nvidia.com-claim_<claimUID>.json``, device names ``<claimUID>-<deviceName>`` so two
claims never define the same CDI name (runtimes cache specs). The spec also carries, as annotations,
what the driver returned to the kubelet, so a lost checkpoint can be rebuilt from the CDI files.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grove.dra.backends.base import ContainerEdits
from grove.dra.fsutil import atomic_write

log = logging.getLogger(__name__)

CDI_VERSION = "0.6.0"
CLASS = "claim"
ANN_UID = "grove.io/claim-uid"
ANN_NAMESPACE = "grove.io/claim-namespace"
ANN_NAME = "grove.io/claim-name"
ANN_DEVICES = "grove.io/prepared-devices"
ANN_MPS = "grove.io/mps-daemons"


def vendor(driver: str) -> str:
    return f"k8s.{driver}"


def kind(driver: str) -> str:
    return f"{vendor(driver)}/{CLASS}"


def device_id(driver: str, claim_uid: str, device_name: str) -> str:
    """Fully qualified CDI device ID returned to the kubelet."""
    return f"{kind(driver)}={claim_uid}-{device_name}"


@dataclass
class ClaimSpec:
    """What a claim's spec file records about the claim (for checkpoint recovery)."""

    uid: str
    namespace: str
    name: str
    devices: list[dict[str, Any]]
    mps: list[dict[str, Any]] = field(default_factory=list)


class CdiWriter:
    """Writes/removes the per-claim spec files under ``root``."""

    def __init__(self, root: Path, driver: str) -> None:
        self.root = root
        self.driver = driver

    def path(self, claim_uid: str) -> Path:
        return self.root / f"{vendor(self.driver)}-{CLASS}_{claim_uid}.json"

    def build(
        self, claim: ClaimSpec, edits: dict[str, ContainerEdits], common: ContainerEdits
    ) -> dict[str, Any]:
        """The spec document; ``edits`` maps device name -> its container edits."""
        spec: dict[str, Any] = {
            "cdiVersion": CDI_VERSION,
            "kind": kind(self.driver),
            "annotations": {
                ANN_UID: claim.uid,
                ANN_NAMESPACE: claim.namespace,
                ANN_NAME: claim.name,
                ANN_DEVICES: json.dumps(claim.devices, sort_keys=True, separators=(",", ":")),
                **({ANN_MPS: json.dumps(claim.mps, sort_keys=True, separators=(",", ":"))} if claim.mps else {}),
            },
            "devices": [
                {"name": f"{claim.uid}-{dev}", "containerEdits": e.to_cdi()} for dev, e in sorted(edits.items())
            ],
        }
        if common.to_cdi():
            spec["containerEdits"] = common.to_cdi()
        return spec

    def write(self, claim: ClaimSpec, edits: dict[str, ContainerEdits], common: ContainerEdits) -> Path:
        p = self.path(claim.uid)
        atomic_write(p, json.dumps(self.build(claim, edits, common), indent=2, sort_keys=True).encode())
        return p

    def remove(self, claim_uid: str) -> None:
        self.path(claim_uid).unlink(missing_ok=True)

    def list_claims(self) -> list[ClaimSpec]:
        """Every readable spec of ours (used to rebuild a corrupt checkpoint); unreadable ones are logged."""
        out: list[ClaimSpec] = []
        if not self.root.is_dir():
            return out
        for p in sorted(self.root.glob(f"{vendor(self.driver)}-{CLASS}_*.json")):
            try:
                ann = json.loads(p.read_text())["annotations"]
                out.append(ClaimSpec(ann[ANN_UID], ann[ANN_NAMESPACE], ann[ANN_NAME], json.loads(ann[ANN_DEVICES]),
                                     json.loads(ann.get(ANN_MPS, "[]"))))
            except (OSError, ValueError, KeyError, TypeError) as e:
                log.error("ignoring unreadable CDI spec %s: %s", p, e)
        return out

    def claim_uids_on_disk(self) -> set[str]:
        prefix = f"{vendor(self.driver)}-{CLASS}_"
        if not self.root.is_dir():
            return set()
        return {p.stem.removeprefix(prefix) for p in self.root.glob(f"{prefix}*.json")}
