"""Shared fixtures for the DRA driver tests (no cluster needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dra_fakeapi import FakeApi
from dra_harness import DriverRun


@pytest.fixture(autouse=True)
def no_leftover_mps_daemons(request: pytest.FixtureRequest) -> Iterator[None]:
    """MPS stand-ins run in their own session (as real daemons do), so a failing test could leave one:
    after each test, stop those whose driver root lies in this test's temp dirs (never other tests')."""
    roots = [str(request.getfixturevalue(n)) for n in ("tmp_path", "short_tmp") if n in request.fixturenames]
    yield
    if not roots:
        return
    from grove.dra.mps import ROOT_ENV, MpsManager, StandinLauncher, read_environ

    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            root = read_environ(int(entry.name)).get(ROOT_ENV, "")
            if any(root.startswith(r) for r in roots):
                MpsManager(Path(root), StandinLauncher()).kill([int(entry.name)])


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
