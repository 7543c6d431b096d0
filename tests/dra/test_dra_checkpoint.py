"""Checkpoint: round trip, checksum, boot id, corruption detection, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

from grove.dra.checkpoint import COMPLETED, STARTED, CheckpointStore, ClaimRecord, LoadOutcome
from grove.dra.fsutil import TEMP_MARKER, remove_stale_temp_files


def rec(uid: str, state: str = COMPLETED) -> ClaimRecord:
    return ClaimRecord(uid, "ns", f"claim-{uid}", state, [{"deviceName": "gpu-0", "poolName": "n"}])


def test_round_trip(tmp_path: Path) -> None:
    s = CheckpointStore(tmp_path / "cp.json", boot_id="boot-1")
    assert s.load() == ({}, LoadOutcome.MISSING, "")
    s.save({"a": rec("a"), "b": rec("b", STARTED)})
    claims, outcome, _ = CheckpointStore(tmp_path / "cp.json", boot_id="boot-1").load()
    assert outcome is LoadOutcome.OK
    assert claims == {"a": rec("a"), "b": rec("b", STARTED)}
    assert not [p for p in tmp_path.iterdir() if TEMP_MARKER in p.name]


def test_checksum_detects_tampering(tmp_path: Path) -> None:
    s = CheckpointStore(tmp_path / "cp.json", boot_id="b")
    s.save({"a": rec("a")})
    doc = json.loads((tmp_path / "cp.json").read_text())
    doc["data"]["claims"]["a"]["state"] = STARTED
    (tmp_path / "cp.json").write_text(json.dumps(doc))
    claims, outcome, reason = s.load()
    assert (claims, outcome) == ({}, LoadOutcome.CORRUPT) and "checksum mismatch" in reason


def test_garbage_and_truncation_are_corrupt_not_exceptions(tmp_path: Path) -> None:
    s = CheckpointStore(tmp_path / "cp.json", boot_id="b")
    s.save({"a": rec("a")})
    full = (tmp_path / "cp.json").read_bytes()
    for bad in (full[: len(full) // 2], b"\x00\xff garbage", b"[]", b'{"kind": "GroveDRACheckpoint"}'):
        (tmp_path / "cp.json").write_bytes(bad)
        assert s.load()[1] is LoadOutcome.CORRUPT
    moved = s.quarantine()
    assert moved is not None and moved.exists() and not (tmp_path / "cp.json").exists()


def test_other_boot_invalidates(tmp_path: Path) -> None:
    CheckpointStore(tmp_path / "cp.json", boot_id="before-reboot").save({"a": rec("a")})
    claims, outcome, _ = CheckpointStore(tmp_path / "cp.json", boot_id="after-reboot").load()
    assert (claims, outcome) == ({}, LoadOutcome.OTHER_BOOT)


def test_real_boot_id_is_read() -> None:
    assert CheckpointStore(Path("/nonexistent")).boot_id  # /proc/sys/kernel/random/boot_id on Linux


def test_stale_temp_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / f".cp.json{TEMP_MARKER}abc").write_text("half")
    (tmp_path / "keep.json").write_text("{}")
    assert [p.name for p in remove_stale_temp_files(tmp_path)] == [f".cp.json{TEMP_MARKER}abc"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
