"""The driver's /metrics (issue #10): prepare/unprepare counts and latency, devices published, scraped from a
real `grove driver` process while the kubelet-protocol client prepares and unprepares a claim."""

from __future__ import annotations

import socket
import time
import urllib.request

from dra_fakeapi import FakeApi
from dra_harness import DriverRun
from prometheus_client.parser import text_string_to_metric_families

from grove.dra.kubeletclient import KubeletClient


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prepare_unprepare_and_devices_are_measured(driver_run: DriverRun, fake_api: FakeApi) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = driver_run.start(extra_args=["--metrics-port", str(port)])
    client = KubeletClient(run.reg_dir, "gpu.nvidia.com")
    client.register()
    deadline = time.monotonic() + 15
    while scrape(port).get(("grove_dra_devices_published", (("driver", "gpu.nvidia.com"),))) != 4:
        assert time.monotonic() < deadline, "devices never published"
        time.sleep(0.1)
    before = scrape(port)
    assert before.get(("grove_dra_claims_total", (("op", "prepare"), ("result", "success"))), 0) == 0
    result = [{"request": "gpu", "driver": "gpu.nvidia.com", "pool": "node-a", "device": "gpu-0"}]
    uid = fake_api.add_claim("ns", "c1", result)
    assert client.prepare([("ns", "c1", uid)])[uid].error == ""
    missing = client.prepare([("ns", "gone", "uid-of-no-claim")])
    assert missing["uid-of-no-claim"].error
    assert client.unprepare([("ns", "c1", uid)]) == {uid: ""}
    after = scrape(port)
    assert after[("grove_dra_claims_total", (("op", "prepare"), ("result", "success")))] == 1
    assert after[("grove_dra_claims_total", (("op", "prepare"), ("result", "error")))] == 1
    assert after[("grove_dra_claims_total", (("op", "unprepare"), ("result", "success")))] == 1
    assert after[("grove_dra_request_duration_seconds_count", (("op", "prepare"),))] == 2
    assert after[("grove_dra_request_duration_seconds_count", (("op", "unprepare"),))] == 1
    assert run.terminate() == 0
