"""Fixtures for the operator's tests (helpers live in operator_fixtures.py, importable from test modules)."""

from __future__ import annotations

from typing import Any

import pytest
from operator_fixtures import clique, make_pcs


@pytest.fixture
def disagg() -> dict[str, Any]:
    """Grove's worked example mn-disagg (§2.2): frontend x2, PCSG prefill [pleader x1, pworker x3] x2 (min 1),
    PCSG decode [dleader x1, dworker x2] x1."""
    return make_pcs(
        "mn-disagg",
        1,
        [clique("frontend", 2), clique("pleader", 1), clique("pworker", 3), clique("dleader", 1), clique("dworker", 2)],
        [
            {"name": "prefill", "cliqueNames": ["pleader", "pworker"], "replicas": 2, "minAvailable": 1},
            {"name": "decode", "cliqueNames": ["dleader", "dworker"], "replicas": 1},
        ],
    )
