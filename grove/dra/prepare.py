"""The prepare/unprepare state machine behind NodePrepareResources / NodeUnprepareResources.

Order of effects, chosen so a SIGKILL anywhere is recoverable:
1. a completed checkpoint entry short-circuits (idempotent re-prepare returns the stored response);
2. the claim is read and checked, opaque configs resolved (errors here touch nothing);
3. checkpoint entry ``PrepareStarted`` with the planned devices;
4. backend prepare per device (sharing settings), the claim's MPS control daemons (pids recorded),
   then the CDI spec (atomic);
5. checkpoint entry ``PrepareCompleted``.
At start-up, ``PrepareStarted`` leftovers are rolled back (MPS daemons stopped, backend unprepare, CDI
removal), so the kubelet's retry prepares from scratch and nothing is ever held twice; daemons of
completed claims are adopted and any other daemon of this driver is killed
(``MpsManager.reconcile``). Calls are serialized by a
thread lock plus an ``flock`` on ``<plugin-data-dir>/pu.lock`` (two driver pods during an upgrade).
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grove.dra import cdi
from grove.dra.backends.base import BackendError, ContainerEdits, PreparableDevice, PrepareBackend
from grove.dra.checkpoint import COMPLETED, STARTED, CheckpointStore, ClaimRecord, LoadOutcome
from grove.dra.claims import ClaimError, ClaimReader, checked_allocation
from grove.dra.fsutil import remove_stale_temp_files
from grove.dra.mps import (
    CONTAINER_LOG_DIR,
    CONTAINER_PIPE_DIR,
    CONTAINER_SHM_DIR,
    MOUNT_OPTIONS,
    MpsDaemon,
    MpsManager,
    daemon_id,
)
from grove.dra.opaqueconfig import ConfigError, DeviceConfig, check_device, pinned_memory_limits, resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimRef:
    """What the kubelet sends for a claim."""

    namespace: str
    uid: str
    name: str


@dataclass
class PrepareResult:
    """Per-claim outcome; ``devices`` are response entries (requestNames, poolName, deviceName, ...)."""

    devices: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


class Preparer:
    """Owns the checkpoint, CDI specs and backend calls of one driver on one node."""

    def __init__(
        self,
        driver: str,
        node: str,
        backend: PrepareBackend,
        reader: ClaimReader,
        cdi_writer: cdi.CdiWriter,
        store: CheckpointStore,
        data_dir: Path,
        devices: Sequence[PreparableDevice],
        mps: MpsManager | None = None,
    ) -> None:
        self.driver, self.node, self.backend, self.reader = driver, node, backend, reader
        self.cdi, self.store, self.data_dir = cdi_writer, store, data_dir
        self.devices = {d.name: d for d in devices}
        self.mps = mps or MpsManager(data_dir / "mps", backend.mps_launcher)
        self._mutex = threading.Lock()
        self.records: dict[str, ClaimRecord] = {}
        self.recovery: str = ""  # what start-up had to do, for logs/tests

    # -- locking -------------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with (self.data_dir / "pu.lock").open("a") as lf:
                fcntl.flock(lf, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lf, fcntl.LOCK_UN)

    def _reload(self) -> None:
        """Re-read the checkpoint under the lock: another instance may have changed it (rolling update)."""
        records, outcome, _ = self.store.load()
        if outcome is LoadOutcome.OK:
            self.records = records

    # -- start-up --------------------------------------------------------------------------------------
    def startup(self) -> None:
        """Clean temp files, load or rebuild the checkpoint, roll back interrupted prepares."""
        with self._locked():
            for d in (self.data_dir, self.cdi.root):
                for p in remove_stale_temp_files(d):
                    log.warning("removed temp file left by a killed driver: %s", p)
            records, outcome, reason = self.store.load()
            if outcome is LoadOutcome.CORRUPT:
                moved = self.store.quarantine()
                records = self._from_cdi()
                self.recovery = f"corrupt checkpoint ({reason}); moved to {moved}; rebuilt {len(records)} claim(s)"
                log.error(
                    "checkpoint is corrupt: %s; moved aside to %s and rebuilt %d prepared claim(s) from CDI specs",
                    reason,
                    moved,
                    len(records),
                )
            elif outcome is LoadOutcome.OTHER_BOOT:
                self.recovery = f"checkpoint from another boot ({reason}); starting empty"
                log.warning("node rebooted since the checkpoint was written (%s): starting empty", reason)
            elif outcome is LoadOutcome.MISSING and self.cdi.claim_uids_on_disk():
                records = self._from_cdi()
                self.recovery = f"no checkpoint; rebuilt {len(records)} claim(s) from CDI specs"
                log.warning("checkpoint missing: %s", self.recovery)
            for rec in [r for r in records.values() if r.state == STARTED]:
                log.warning("rolling back interrupted prepare of claim %s/%s (%s)", rec.namespace, rec.name, rec.uid)
                self._rollback(rec)
                del records[rec.uid]
            for uid in self.cdi.claim_uids_on_disk() - set(records):
                log.warning("removing orphaned CDI spec of claim %s", uid)
                self.cdi.remove(uid)
            self.backend.reset({d["deviceName"]: uid for uid, r in records.items() for d in r.devices})
            self._adopt_daemons(records)
            self.records = records
            self.store.save(records)

    def _adopt_daemons(self, records: dict[str, ClaimRecord]) -> None:
        wanted = {d["id"]: MpsDaemon.from_json(d) for r in records.values() for d in r.mps}
        try:
            pids = self.mps.reconcile(wanted)
        except Exception as e:  # a daemon that can't be restarted must not keep the driver down
            log.error("MPS daemons could not all be adopted/restarted: %s", e)
            return
        for r in records.values():
            for d in r.mps:
                d["pid"] = pids.get(d["id"], d.get("pid"))

    def _from_cdi(self) -> dict[str, ClaimRecord]:
        return {
            s.uid: ClaimRecord(s.uid, s.namespace, s.name, COMPLETED, s.devices, s.mps)
            for s in self.cdi.list_claims()
        }

    def _rollback(self, rec: ClaimRecord) -> None:
        for m in rec.mps:
            self.mps.stop(m["id"], MpsDaemon.from_json(m))
        for d in rec.devices:
            try:
                self.backend.unprepare(rec.uid, d["deviceName"])
            except BackendError as e:
                log.error("rollback of %s for claim %s: %s", d["deviceName"], rec.uid, e)
        self.cdi.remove(rec.uid)

    # -- prepare ---------------------------------------------------------------------------------------
    def prepare(self, refs: list[ClaimRef]) -> dict[str, PrepareResult]:
        out: dict[str, PrepareResult] = {}
        with self._locked():
            self._reload()
            for ref in refs:
                try:
                    out[ref.uid] = PrepareResult(devices=self._prepare_one(ref))
                except (ClaimError, ConfigError, BackendError) as e:
                    log.warning("prepare %s/%s (%s) failed: %s", ref.namespace, ref.name, ref.uid, e)
                    out[ref.uid] = PrepareResult(error=str(e))
                except Exception as e:  # never let one claim break the call (or the process)
                    log.exception("prepare %s/%s (%s): internal error", ref.namespace, ref.name, ref.uid)
                    out[ref.uid] = PrepareResult(error=f"internal error: {e}")
        return out

    def _plan(
        self, ref: ClaimRef
    ) -> tuple[list[dict[str, Any]], list[tuple[PreparableDevice, DeviceConfig]], list[tuple[MpsDaemon, list[str]]]]:
        """Response entries, (device, config) work items, and MPS daemons with the devices they serve.
        Everything that can be refused is refused here, before any effect."""
        alloc = checked_allocation(self.reader.get(ref.namespace, ref.name), ref.uid, self.driver)
        results = alloc["results"]
        for r in results:
            if r.get("pool") != self.node or r.get("device") not in self.devices:
                raise ClaimError(f"allocated device {r.get('pool')}/{r.get('device')} is not on node {self.node}")
        in_use = {
            d["deviceName"]: uid
            for uid, rec in self.records.items()
            if uid != ref.uid and rec.state == COMPLETED
            for d in rec.devices
            if not d.get("adminAccess")
        }
        for r in results:
            if not r.get("adminAccess") and r["device"] in in_use:
                raise ClaimError(f"device {r['device']} is already prepared for claim {in_use[r['device']]}")
        types: dict[str, str] = {r["device"]: self.devices[r["device"]].type for r in results}
        configs = resolve(self.driver, results, alloc["config"], types)
        entries: list[dict[str, Any]] = []
        work: list[tuple[PreparableDevice, DeviceConfig]] = []
        seen: set[str] = set()
        for r, cfg in zip(results, configs, strict=True):
            entry: dict[str, Any] = {
                "requestNames": [r["request"].split("/", 1)[0]],
                "poolName": r["pool"],
                "deviceName": r["device"],
                "cdiDeviceIds": [cdi.device_id(self.driver, ref.uid, r["device"])],
            }
            if r.get("shareID"):
                entry["shareId"] = r["shareID"]
            if r.get("adminAccess"):
                entry["adminAccess"] = True
            entries.append(entry)
            if r["device"] not in seen:
                seen.add(r["device"])
                work.append((self.devices[r["device"]], cfg))
        groups: dict[int, tuple[DeviceConfig, list[PreparableDevice]]] = {}
        for device, cfg in work:
            check_device(cfg, device.name, device.compute_capability)
            if cfg.strategy == "MPS":  # one daemon per config entry (NVIDIA: per config group of a claim)
                groups.setdefault(id(cfg), (cfg, []))[1].append(device)
        daemons: list[tuple[MpsDaemon, list[str]]] = []
        for cfg, devs in groups.values():
            uuids = [d.uuid for d in devs]
            daemons.append((MpsDaemon(
                id=daemon_id(ref.uid, uuids),
                uuids=uuids,
                active_thread_percentage=cfg.mps.get("defaultActiveThreadPercentage"),
                pinned_memory_limits=pinned_memory_limits(cfg.mps, uuids),
                multi_user=bool(cfg.mps.get("multiUser")),
            ), [d.name for d in devs]))
        return entries, work, daemons

    def _mps_edits(self, d: MpsDaemon) -> ContainerEdits:
        """NVIDIA's MPS CDI edits: the pipe dir and shm bind-mounted, the pipe dir in the env; plus the
        log dir and the limits as client-side defaults."""
        dirs = self.mps.dirs(d)
        return ContainerEdits(env=d.client_env(), mounts=[
            {"hostPath": str(dirs["shm"]), "containerPath": CONTAINER_SHM_DIR, "options": list(MOUNT_OPTIONS)},
            {"hostPath": str(dirs["pipe"]), "containerPath": CONTAINER_PIPE_DIR, "options": list(MOUNT_OPTIONS)},
            {"hostPath": str(dirs["log"]), "containerPath": CONTAINER_LOG_DIR, "options": list(MOUNT_OPTIONS)},
        ])

    def _prepare_one(self, ref: ClaimRef) -> list[dict[str, Any]]:
        rec = self.records.get(ref.uid)
        if rec is not None and rec.state == COMPLETED:
            return rec.devices
        entries, work, daemons = self._plan(ref)
        if not entries:
            return []  # nothing allocated from this driver: no state, and no (invalid) empty CDI spec
        if rec is not None:  # PrepareStarted by a previous (crashed) attempt in this process's lifetime
            self._rollback(rec)
        rec = ClaimRecord(ref.uid, ref.namespace, ref.name, STARTED, entries, [d.to_json() for d, _ in daemons])
        self.records[ref.uid] = rec
        self.store.save(self.records)
        try:
            edits: dict[str, ContainerEdits] = {}
            for device, cfg in work:
                edits[device.name] = self.backend.prepare(ref.uid, device, cfg)
            for d, names in daemons:
                d.pid = self.mps.start(d)
                extra = self._mps_edits(d)
                for name in names:
                    edits[name].env += extra.env
                    edits[name].mounts += extra.mounts
            if daemons:
                rec.mps = [d.to_json() for d, _ in daemons]
                self.store.save(self.records)  # the pids, before anything else can fail
            self.cdi.write(cdi.ClaimSpec(ref.uid, ref.namespace, ref.name, entries, rec.mps), edits,
                           self.backend.common_edits())
        except Exception:
            self._rollback(rec)
            del self.records[ref.uid]
            self.store.save(self.records)
            raise
        rec.state = COMPLETED
        self.store.save(self.records)
        return entries

    # -- unprepare -------------------------------------------------------------------------------------
    def unprepare(self, refs: list[ClaimRef]) -> dict[str, str]:
        """Per claim UID an error string ("" = success). Unknown claims succeed."""
        out: dict[str, str] = {}
        with self._locked():
            self._reload()
            for ref in refs:
                try:
                    rec = self.records.get(ref.uid)
                    if rec is not None:
                        self._rollback(rec)
                        del self.records[ref.uid]
                        self.store.save(self.records)
                    else:
                        self.cdi.remove(ref.uid)
                    out[ref.uid] = ""
                except Exception as e:
                    log.exception("unprepare %s/%s (%s) failed", ref.namespace, ref.name, ref.uid)
                    out[ref.uid] = f"unprepare failed: {e}"
        return out

    def prepared_claims(self) -> dict[str, ClaimRecord]:
        with self._mutex:
            return dict(self.records)
