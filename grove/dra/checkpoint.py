"""The checkpoint: which claims this node has prepared, surviving driver restarts.

The kubelet does not re-send NodePrepareResources for running pods after a plugin restart, and
NodeUnprepareResources only carries the claim's UID/name, so the driver must remember what it did.
JSON, written atomically, with a SHA-256 checksum over the canonical payload. Each claim is
``PrepareStarted`` (written before touching devices, so a crash mid-prepare can be rolled back) or
``PrepareCompleted`` (with the exact response, so a repeated prepare returns the same result).
The node boot ID is stored: after a reboot every prepared state is gone, so the checkpoint is too.
A corrupt file is never fatal: ``load`` reports it and the caller rebuilds (see ``prepare.Preparer``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from grove.dra.fsutil import atomic_write

log = logging.getLogger(__name__)

KIND = "GroveDRACheckpoint"
VERSION = 1
STARTED = "PrepareStarted"
COMPLETED = "PrepareCompleted"
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
BOOT_ID_ENV = "GROVE_DRA_BOOT_ID_PATH"  # test hook: simulate a reboot with another file


def read_boot_id() -> str:
    path = Path(os.environ.get(BOOT_ID_ENV) or BOOT_ID_PATH)
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@dataclass
class ClaimRecord:
    """One claim's entry; ``devices`` holds the prepare response entries (camelCase dicts)."""

    uid: str
    namespace: str
    name: str
    state: str
    devices: list[dict[str, Any]] = field(default_factory=list)
    # MPS control daemons of this claim (grove.dra.mps.MpsDaemon as JSON, with their pids): issue 12
    mps: list[dict[str, Any]] = field(default_factory=list)


class LoadOutcome(Enum):
    MISSING = "missing"
    OK = "ok"
    CORRUPT = "corrupt"
    OTHER_BOOT = "other-boot"


def _checksum(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


class CheckpointStore:
    """Reads and writes ``<plugin-data-dir>/checkpoint.json``."""

    def __init__(self, path: Path, boot_id: str | None = None) -> None:
        self.path = path
        self.boot_id = read_boot_id() if boot_id is None else boot_id

    def load(self) -> tuple[dict[str, ClaimRecord], LoadOutcome, str]:
        """Records, how loading went, and a human-readable reason when not OK."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}, LoadOutcome.MISSING, ""
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("kind") != KIND:
                raise ValueError(f"not a {KIND} document")
            if doc.get("version") != VERSION:
                raise ValueError(f"unsupported version {doc.get('version')!r}")
            data = doc["data"]
            if doc.get("checksum") != _checksum(data):
                raise ValueError("checksum mismatch")
            claims = {uid: ClaimRecord(**rec) for uid, rec in data["claims"].items()}
        except (ValueError, KeyError, TypeError) as e:
            return {}, LoadOutcome.CORRUPT, f"{self.path}: {e}"
        if data.get("nodeBootID") != self.boot_id:
            return {}, LoadOutcome.OTHER_BOOT, f"boot id {data.get('nodeBootID')!r} != {self.boot_id!r}"
        return claims, LoadOutcome.OK, ""

    def save(self, claims: dict[str, ClaimRecord]) -> None:
        data = {"nodeBootID": self.boot_id, "claims": {uid: asdict(r) for uid, r in sorted(claims.items())}}
        doc = {"kind": KIND, "version": VERSION, "checksum": _checksum(data), "data": data}
        atomic_write(self.path, json.dumps(doc, indent=1, sort_keys=True).encode(), mode=0o600)

    def quarantine(self) -> Path | None:
        """Move a corrupt file aside (kept for post-mortem) so the next save starts clean."""
        if not self.path.exists():
            return None
        dest = self.path.with_name(self.path.name + ".corrupt")
        os.replace(self.path, dest)
        return dest
