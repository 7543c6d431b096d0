"""Shared fixtures for the DRA driver tests (no cluster needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dra_fakeapi import FakeApi
from dra_harness import DriverRun


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi().start()
    yield api
    api.stop()


@pytest.fixture
def driver_run(fake_api: FakeApi, short_tmp: Path) -> Iterator[DriverRun]:
    fake_api.add_node("node-a")
    run = DriverRun(root=short_tmp, node="node-a", kubeconfig=fake_api.kubeconfig(short_tmp / "kubeconfig"))
    yield run
    run.kill()
