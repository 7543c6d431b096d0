"""One node, one driver (issue 12): a second driver for the same node name refuses to start, and a driver
that lost the node to another never deletes that driver's ResourceSlices. Real driver processes, real
signals (SIGKILL, SIGSTOP/SIGCONT), against the in-memory API server."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from dra_fakeapi import FakeApi
from dra_harness import DriverRun


def wait_until(fn, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def second(fake_api: FakeApi, root: Path) -> DriverRun:
    root.mkdir()
    return DriverRun(root=root, node="node-a", kubeconfig=fake_api.kubeconfig(root / "kubeconfig"))


def test_second_driver_for_the_same_node_refuses_to_start(driver_run: DriverRun, fake_api: FakeApi,
                                                        short_tmp: Path) -> None:
    first = driver_run.start()
    wait_until(lambda: fake_api.slices_for("node-a"), 20, "slices of the first driver")
    other = second(fake_api, short_tmp / "b")
    try:
        other.start(wait=False)
        assert other.proc is not None and other.proc.wait(30) == 3
        log = other.log.read_text()
        held = "another driver for node node-a is running: Lease kube-node-lease/gpu.nvidia.com-node-a is held by"
        assert held in log
        assert str(first.data_dir.resolve()) in log  # the holder is named
        assert not (other.reg_dir / "gpu.nvidia.com-reg.sock").exists()
        assert fake_api.slices_for("node-a")  # the refused driver deleted nothing
        assert first.proc is not None and first.proc.poll() is None
        # once the first stops (releasing the Lease), the second may start
        assert first.terminate() == 0
        assert fake_api.leases == {}
        other.start()
        wait_until(lambda: fake_api.slices_for("node-a"), 20, "slices of the second driver")
    finally:
        other.kill()


def test_a_driver_that_lost_the_node_leaves_the_new_owners_slices(driver_run: DriverRun, fake_api: FakeApi,
                                                               short_tmp: Path) -> None:
    lease = ["--lease-duration-seconds", "2"]
    first = driver_run.start(extra_args=lease)
    wait_until(lambda: fake_api.slices_for("node-a"), 20, "slices of the first driver")
    assert first.proc is not None
    first.proc.send_signal(signal.SIGSTOP)  # frozen: it can't renew, its Lease expires
    other = second(fake_api, short_tmp / "b")
    try:
        time.sleep(2.5)
        other.start(extra_args=lease)
        [lease_obj] = fake_api.leases.values()
        assert lease_obj["spec"]["holderIdentity"].endswith(str(other.data_dir.resolve()))
        first.proc.send_signal(signal.SIGCONT)  # wakes up, finds the Lease taken, stops
        assert first.proc.wait(30) == 1
        assert "another driver took Lease" in first.log.read_text()
        assert "held by another driver: leaving its ResourceSlices alone" in first.log.read_text()
        assert fake_api.slices_for("node-a") and not [w for w in fake_api.writes if w[0] == "delete"]
        assert other.proc is not None and other.proc.poll() is None
    finally:
        other.kill()
